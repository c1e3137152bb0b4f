"""Every module of the library and the dashboard imports: a name moved from one
module to another cannot leave an import behind (mypy skips the modules on its
not-yet-clean list, and ruff does not follow imports across modules)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import dash_app
import triptych


def _modules(package) -> list[str]:
    # A `__main__` runs its program when imported: it is the one module left out.
    found = pkgutil.walk_packages(package.__path__, package.__name__ + ".")
    return sorted(m.name for m in found if not m.name.endswith(".__main__"))


@pytest.mark.parametrize("name", _modules(triptych) + _modules(dash_app))
def test_the_module_imports(name):
    importlib.import_module(name)
