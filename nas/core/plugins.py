"""Importing a plugin module (a space, task or strategy named by its module's name)."""

from __future__ import annotations

import importlib
from types import ModuleType

from nas.core.errors import ConfigError

__all__ = ["import_plugin"]


def import_plugin(module_name: str) -> ModuleType:
    """The module ``module_name``; a module that does not exist, or fails to import, is a
    :class:`ConfigError` of one line (``no module 'x'``, or the error inside it), which
    the caller prefixes with what it was looking for."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise ConfigError(f"no module {module_name!r}") from None
        raise ConfigError(f"module {module_name!r} cannot be imported ({exc})") from None
    except ImportError as exc:
        raise ConfigError(f"module {module_name!r} cannot be imported ({exc})") from None
