"""``codebrain.utils._lazy.lazy_reexports``: PEP 562 re-exports, and the modules using it."""

from __future__ import annotations

import importlib
import sys
import types

import pytest

from codebrain.utils._lazy import lazy_reexports


@pytest.fixture
def fake_module():
    """A module ``codebrain.utils._fake`` (package ``codebrain.utils``) in ``sys.modules``."""
    name = "codebrain.utils._fake"
    mod = types.ModuleType(name)
    mod.__package__ = "codebrain.utils"
    mod.own = 1
    sys.modules[name] = mod
    yield mod
    del sys.modules[name]


def test_a_mapped_name_is_imported_on_first_access_and_cached(fake_module):
    getattr_, dir_ = lazy_reexports(
        fake_module.__name__, {"check_int": "codebrain.utils.check", "atomic_write_json": ".io"}
    )
    fake_module.__getattr__, fake_module.__dir__ = getattr_, dir_
    from codebrain.utils import check, io

    assert "check_int" not in vars(fake_module)
    assert fake_module.check_int is check.check_int  # absolute module
    assert fake_module.atomic_write_json is io.atomic_write_json  # relative to the package
    assert vars(fake_module)["check_int"] is check.check_int  # cached: no second import


def test_an_unknown_name_raises_the_usual_attribute_error(fake_module):
    fake_module.__getattr__, _ = lazy_reexports(fake_module.__name__, {"x": "codebrain.utils"})
    with pytest.raises(
        AttributeError, match=r"module 'codebrain.utils._fake' has no attribute 'y'"
    ):
        _ = fake_module.y
    assert not hasattr(fake_module, "y")


def test_dir_lists_own_and_mapped_names_once(fake_module):
    fake_module.__getattr__, fake_module.__dir__ = lazy_reexports(
        fake_module.__name__, {"check_int": "codebrain.utils.check"}
    )
    before = dir(fake_module)
    assert "own" in before and "check_int" in before
    _ = fake_module.check_int  # now also a real attribute
    after = dir(fake_module)
    assert after == sorted(after) and after.count("check_int") == 1


@pytest.mark.parametrize(
    ("module", "name", "home"),
    [
        ("codebrain.data.windows", "WindowDataset", "codebrain.data.datasets"),
        ("codebrain.data.windows", "load_windows", "codebrain.data.pipeline"),
        ("codebrain.data.windows", "load_windows_npz", "codebrain.data.window_files"),
        ("codebrain.benchmark.recipe", "get_recipe", "codebrain.benchmark.registry"),
        ("codebrain.benchmark", "write_results", "codebrain.benchmark.report"),
        ("codebrain.benchmark", "task_metrics", "codebrain.benchmark.scoring"),
    ],
)
def test_the_modules_re_export_their_moved_names(module, name, home):
    mod = importlib.import_module(module)
    assert getattr(mod, name) is getattr(importlib.import_module(home), name)
    assert name in dir(mod) and name in mod.__all__
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        _ = mod.no_such_name
