"""The name -> builder table of evstream's networks (torchvision's ``register_model`` pattern).

Builders are keyword-only functions returning an ``nn.Module``. A module registers its
builders with :func:`register`; :func:`build` looks a name up. Names are unique: registering
one twice raises, so two files can never silently shadow each other.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

__all__ = ["BUILDERS", "build", "builder", "names", "register"]

BUILDERS: dict[str, Callable[..., nn.Module]] = {}
"""Registered builders by name."""


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a keyword-only builder to :data:`BUILDERS` under ``name``.

    Raises:
        TypeError: ``name`` is not a non-empty string.
        ValueError: ``name`` is already registered.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"a builder name must be a non-empty string, got {name!r}")

    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in BUILDERS:
            raise ValueError(f"network {name!r} is already registered (by {BUILDERS[name].__module__})")
        BUILDERS[name] = fn
        return fn

    return decorator


def builder(name: str) -> Callable[..., nn.Module]:
    """The builder registered as ``name``; ValueError listing the known names otherwise."""
    try:
        return BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; known: {', '.join(names())}") from None


def build(name: str, **kwargs) -> nn.Module:
    """Build the network ``name`` with keyword arguments, e.g. ``build("tasnn_gesture", time_steps=16)``."""
    return builder(name)(**kwargs)


def names() -> list[str]:
    """The registered names, sorted."""
    return sorted(BUILDERS)
