"""Activation names in configs are looked up in an allow-list, never imported."""

from __future__ import annotations

import sys

import pytest

from codebrain.layers.activations import ALLOWED_ACTIVATIONS, activation_path, resolve_activation


@pytest.mark.parametrize("cls", ALLOWED_ACTIVATIONS)
def test_every_allowed_activation_round_trips(cls):
    assert resolve_activation(activation_path(cls)) is cls
    assert resolve_activation(f"torch.nn.{cls.__name__}") is cls
    assert resolve_activation(cls) is cls


@pytest.mark.parametrize(
    "name",
    [
        "codebrain.cli.__main__.X",
        "torch.utils.model_dump.__main__.X",
        "torch.nn.modules.module.Module",
        "os.system",
        "torch.nn.Linear",
        "builtins.eval",
        "",
    ],
)
def test_other_names_are_refused_without_import(name, monkeypatch):
    module = name.rpartition(".")[0]
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(ValueError, match="not an allowed activation"):
        resolve_activation(name)
    assert module == "" or module not in sys.modules
