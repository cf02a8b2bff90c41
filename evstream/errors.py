"""User-facing errors: problems with what the user gave (a file, a setting, a checkpoint).

The command line prints their message as one line (``evstream <cmd>: error: ...``) instead of a
traceback; library callers catch them as the :class:`ValueError` they are.
"""

from __future__ import annotations

__all__ = ["UserError", "check_positive"]


class UserError(ValueError):
    """A bad input the user can fix; the message names the thing and the problem."""


def check_positive(group: str, **values) -> None:
    """Raise :class:`UserError` naming the first of ``values`` that is not > 0 (None, meaning unset, passes).

    ``group`` is the settings group the names belong to, so the message names the setting as a
    config does (``task.time_steps``).

    Example:
        >>> check_positive("task", time_steps=0)
        Traceback (most recent call last):
        ...
        evstream.errors.UserError: task.time_steps must be > 0, got 0
    """
    for name, value in values.items():
        if value is not None and not value > 0:
            raise UserError(f"{group}.{name} must be > 0, got {value!r}")
