"""HubMixin is model-agnostic: any model with get_config/from_config gets the folder format."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import torch
from torch import nn

from codebrain import CodeBrain, TFDualTokenizer
from codebrain.models._hub import HubMixin


class Toy(HubMixin, nn.Module, library_name="codebrain"):
    _card_title = "Toy"
    _card_description = "A linear map."

    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.width = width
        self.lin = nn.Linear(width, 1)

    def get_config(self) -> dict[str, Any]:
        return {"width": self.width}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Toy:
        return cls(**config)


def test_a_plain_model_round_trips(tmp_path):
    m = Toy(4)
    folder = m.save_pretrained(tmp_path / "toy")
    assert sorted(os.listdir(folder)) == ["README.md", "config.json", "model.safetensors"]
    saved = json.loads((folder / "config.json").read_text())
    assert set(saved) == {"width", "codebrain_version"}  # no braindecode key: CodeBrain's own
    card = (folder / "README.md").read_text()
    assert "# Toy" in card and "| `width` | `4` |" in card and "## Citation" not in card
    loaded = Toy.from_pretrained(folder)
    assert not loaded.training
    x = torch.randn(2, 4)
    torch.testing.assert_close(loaded.lin(x), m.lin(x))


def test_overrides_reach_from_config_and_bad_ones_name_the_file(tmp_path):
    folder = Toy(4).save_pretrained(tmp_path / "toy")
    with pytest.raises(TypeError, match=r"Cannot build Toy from .*config\.json: .*bogus"):
        Toy.from_pretrained(folder, bogus=1)
    with pytest.raises(RuntimeError, match="size mismatch"):
        Toy.from_pretrained(folder, width=5)  # weights of width 4


def test_weights_without_config_are_refused_in_one_line(tmp_path):
    folder = Toy(4).save_pretrained(tmp_path / "toy")
    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="no config.json .*interrupted save_pretrained"):
        Toy.from_pretrained(folder)


@pytest.mark.parametrize("cls", [CodeBrain, TFDualTokenizer])
def test_both_models_load_through_the_one_mixin(cls: type):
    for hook in ("from_pretrained", "_from_pretrained", "save_pretrained", "push_to_hub"):
        owner = next(k for k in cls.__mro__ if hook in vars(k))
        assert owner in HubMixin.__mro__, f"{cls.__name__}.{hook} is re-implemented in {owner}"
