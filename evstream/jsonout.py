"""Plain Python values and strict JSON of results (metrics, summaries).

``json.dumps`` writes ``NaN`` / ``Infinity`` by default, which is not JSON and which ``jq``,
JavaScript and most parsers reject; in :func:`to_json` a number that could not be computed is
``null`` instead. :func:`plain` turns numpy/torch numbers into Python ones, which JSON and
``torch.load(weights_only=True)`` both accept.
"""

from __future__ import annotations

import json
import math
import os

__all__ = ["json_ready", "plain", "to_json"]


def plain(value):
    """``value`` in Python builtins: numpy/torch scalars and arrays (anything with ``tolist``) -> numbers
    and lists, tuples -> lists, paths -> str, dict keys -> str. NaN stays NaN."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    for builtin in (bool, int, float, str):  # subclasses: numpy.float64, IntEnum, ...
        if isinstance(value, builtin):
            return builtin(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays, torch tensors
        return plain(value.tolist())
    raise TypeError(f"{type(value).__name__} is not a plain value: {value!r}")


def json_ready(value):
    """:func:`plain` ``(value)`` with NaN and infinities replaced by None."""
    return _finite(plain(value))


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def to_json(value, **dumps_options) -> str:
    """``json.dumps`` of :func:`json_ready` ``(value)``: never NaN (``allow_nan=False`` guards it)."""
    return json.dumps(json_ready(value), allow_nan=False, **dumps_options)
