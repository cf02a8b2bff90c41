"""The house numba decorator: every kernel is nopython, releases the GIL and caches its build."""

from __future__ import annotations

import numba

kernel = numba.njit(cache=True, nogil=True)
"""Decorate a private kernel: ``@kernel`` compiles it nopython, with ``nogil=True`` and ``cache=True``."""
