"""quilt3 without its admin and API-key clients until something uses them.

`import quilt3` imports `quilt3.admin` and `quilt3.api_keys`: GraphQL clients built on pydantic
models, ~0.15 s of CPU and most of quilt3's import, which the packager never uses (a Lambda cold
start, `package-batch`, the demo's start pay it). Imported before quilt3 (`push.py` does), this
module puts stand-ins for the two in `sys.modules`; the first attribute read from either imports
the real module, so `quilt3.admin.users` or `quilt3.api_keys.list` still work as ever.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

DEFERRED = ("quilt3.admin", "quilt3.api_keys")


class Deferred(types.ModuleType):
    """Stands in for a module until an attribute is read from it; then the real one is imported."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


def defer_admin_clients() -> None:
    """Idempotent; nothing to do once quilt3 is imported (its clients are then imported too)."""
    if "quilt3" in sys.modules:
        return
    for name in DEFERRED:
        sys.modules.setdefault(name, Deferred(name))


defer_admin_clients()
