"""One weight-decay rule for the three loops: pinned parameter groups, hints, layer-wise lr decay."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from _fixtures import make_tiny_backbone, make_tiny_backbone_tokenizer
from codebrain.models.probe import LinearProbe
from codebrain.training.finetune import FinetuneConfig, _param_groups
from codebrain.training.optim import (
    codebrain_layer_depth,
    layer_decay_lr,
    merge_param_groups,
    no_weight_decay_names,
    param_groups,
)
from codebrain.training.pretrain import build_param_groups
from codebrain.training.tokenizer_trainer import _param_groups as tokenizer_param_groups

WN = "parametrizations.weight"
N_SCALES = 10  # SGConv kernels of the tiny backbone (l_max = 3 channels x 3 patches)


def _block(i: int) -> tuple[set[str], set[str]]:
    """(decay, no decay) names of residual block ``i`` of the tiny backbone."""
    b = f"residual_layer.residual_blocks.{i}."
    decay = {
        b + f"conv_layer.conv.{WN}.original1",
        b + "sgconv.output_linear.weight",
        b + "attention.in_proj_weight",
        b + "attention.out_proj.weight",
        b + f"res_conv.{WN}.original1",
        b + f"skip_conv.{WN}.original1",
    }
    no_decay = {
        b + "rms_norm.scale",
        b + "conv_layer.conv.bias",
        b + f"conv_layer.conv.{WN}.original0",
        b + "sgconv.skip_weight",
        *(b + f"sgconv.kernel_list.{k}" for k in range(N_SCALES)),
        b + "sgconv.output_linear.bias",
        b + "attention.in_proj_bias",
        b + "attention.out_proj.bias",
        b + "res_conv.bias",
        b + f"res_conv.{WN}.original0",
        b + "skip_conv.bias",
        b + f"skip_conv.{WN}.original0",
    }
    return decay, no_decay


CODEBRAIN_DECAY = {
    "patch_embedding.proj_in.0.weight",
    "patch_embedding.proj_in.3.weight",
    "patch_embedding.proj_in.6.weight",
    "patch_embedding.spectral_proj.0.weight",
    "patch_embedding.positional_encoding.0.weight",
    f"init_conv.0.conv.{WN}.original1",
    *_block(0)[0],
    *_block(1)[0],
    f"final_conv.0.conv.{WN}.original1",
    "final_conv.2.conv.weight",
    "lm_head_t.weight",
    "lm_head_f.weight",
    "final_layer.1.weight",
    "final_layer.4.weight",
    "final_layer.7.weight",
}
CODEBRAIN_NO_DECAY = {
    *(f"patch_embedding.proj_in.{i}.bias" for i in (0, 1, 3, 4, 6, 7)),
    *(f"patch_embedding.proj_in.{i}.weight" for i in (1, 4, 7)),  # GroupNorm
    "patch_embedding.spectral_proj.0.bias",
    "patch_embedding.positional_encoding.0.bias",
    "init_conv.0.conv.bias",
    f"init_conv.0.conv.{WN}.original0",
    *_block(0)[1],
    *_block(1)[1],
    "final_conv.0.conv.bias",
    f"final_conv.0.conv.{WN}.original0",
    "final_conv.2.conv.bias",
    "norm.weight",
    "norm.bias",
    "final_layer.1.bias",
    "final_layer.4.bias",
    "final_layer.7.bias",
}
CODEBRAIN_FROZEN = {"patch_embedding.mask_encoding"}


def _transformer(prefix: str) -> tuple[set[str], set[str]]:
    """(decay, no decay) names of one tokenizer transformer (one block)."""
    b = f"{prefix}.blocks.0."
    decay = {
        f"{prefix}.cls_token",
        f"{prefix}.chan_embed",
        f"{prefix}.time_embed",
        b + "attn.qkv.weight",
        b + "attn.proj.weight",
        b + "mlp.fc1.weight",
        b + "mlp.fc2.weight",
    }
    no_decay = {
        b + "norm1.weight",
        b + "norm1.bias",
        b + "attn.q_bias",
        b + "attn.v_bias",
        b + "attn.proj.bias",
        b + "norm2.weight",
        b + "norm2.bias",
        b + "mlp.fc1.bias",
        b + "mlp.fc2.bias",
        f"{prefix}.norm.weight",
        f"{prefix}.norm.bias",
    }
    return decay, no_decay


_TF = [f"tfconv.{branch}" for branch in ("temporal", "spectral")]
_HEADS = ["proj_t.0", "proj_t.2", "proj_f.0", "proj_f.2", "decoder_in_t", "decoder_in_f"] + [
    f"head_{h}.{i}" for h in ("time", "amp", "phase") for i in (0, 2)
]
TOKENIZER_DECAY = {
    *(f"{tf}.{i}.weight" for tf in _TF for i in (0, 4, 8)),  # convs
    *(n for t in ("encoder", "decoder_t", "decoder_f") for n in _transformer(t)[0]),
    *(f"{h}.weight" for h in _HEADS),
}
TOKENIZER_NO_DECAY = {
    *(f"{tf}.{i}.bias" for tf in _TF for i in (0, 1, 4, 5, 8, 9)),
    *(f"{tf}.{i}.weight" for tf in _TF for i in (1, 5, 9)),  # BatchNorm
    *(n for t in ("encoder", "decoder_t", "decoder_f") for n in _transformer(t)[1]),
    *(f"{h}.bias" for h in _HEADS),
}


def _names(group: dict) -> set[str]:
    return set(group["names"])


def _model() -> nn.Module:
    return make_tiny_backbone(num_res_layers=2)


# ------------------------------------------------------------------------ pinned groups
def test_codebrain_groups_are_pinned():
    model = _model()
    groups = param_groups(model, 0.05)
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0]
    assert _names(groups[0]) == CODEBRAIN_DECAY
    assert _names(groups[1]) == CODEBRAIN_NO_DECAY
    everything = {n for n, _ in model.named_parameters()}
    assert everything == CODEBRAIN_DECAY | CODEBRAIN_NO_DECAY | CODEBRAIN_FROZEN
    # module order (the layout of saved optimizer states)
    order = [n for n, p in model.named_parameters() if p.requires_grad]
    assert groups[0]["names"] == [n for n in order if n in CODEBRAIN_DECAY]
    assert groups[1]["names"] == [n for n in order if n in CODEBRAIN_NO_DECAY]


def test_tokenizer_groups_are_pinned():
    model = make_tiny_backbone_tokenizer().train()
    groups = param_groups(model, 1e-4, sort_by_name=True)
    assert [g["weight_decay"] for g in groups] == [1e-4, 0.0]
    assert _names(groups[0]) == TOKENIZER_DECAY
    assert _names(groups[1]) == TOKENIZER_NO_DECAY
    assert {n for n, _ in model.named_parameters()} == TOKENIZER_DECAY | TOKENIZER_NO_DECAY
    assert groups[0]["names"] == sorted(TOKENIZER_DECAY)
    assert groups[1]["names"] == sorted(TOKENIZER_NO_DECAY)


def test_loops_use_the_one_rule():
    model = _model()
    pre = build_param_groups(model, 0.05)
    assert (_names(pre[0]), _names(pre[1])) == (CODEBRAIN_DECAY, CODEBRAIN_NO_DECAY)

    tok = make_tiny_backbone_tokenizer().train()
    name_of = {id(p): n for n, p in tok.named_parameters()}
    groups = tokenizer_param_groups(tok, 1e-4)
    assert [g["weight_decay"] for g in groups] == [1e-4, 0.0]
    assert [name_of[id(p)] for p in groups[0]["params"]] == sorted(TOKENIZER_DECAY)
    assert [name_of[id(p)] for p in groups[1]["params"]] == sorted(TOKENIZER_NO_DECAY)
    assert all("names" not in g for g in groups)


# -------------------------------------------------------------------- fine-tuning groups
def _by_name(model: nn.Module, groups: list[dict], extra: nn.Module | None = None) -> dict:
    name_of = {id(p): n for n, p in model.named_parameters()}
    if extra is not None:
        name_of.update({id(p): f"probe.{n}" for n, p in extra.named_parameters()})
    return {name_of[id(p)]: (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}


def test_finetune_full_layer_decay_lrs_and_decay_are_pinned():
    model = _model()
    cfg = FinetuneConfig(lr=1e-3, backbone_lr=1e-4, layer_decay=0.5, weight_decay=0.1)
    groups = _param_groups(model, model.final_layer, cfg)
    got = _by_name(model, groups)

    def lr(name: str) -> float:
        if name.startswith("final_layer."):
            return 1e-3
        if name.startswith(("patch_embedding.", "init_conv.")):
            return 1e-4 * 0.5**3
        if name.startswith("residual_layer.residual_blocks.0."):
            return 1e-4 * 0.5**2
        if name.startswith("residual_layer.residual_blocks.1."):
            return 1e-4 * 0.5
        return 1e-4  # final_conv, norm

    trained = (CODEBRAIN_DECAY | CODEBRAIN_NO_DECAY) - {"lm_head_t.weight", "lm_head_f.weight"}
    assert set(got) == trained
    for name in trained:
        wd = 0.0 if name in CODEBRAIN_NO_DECAY else 0.1
        assert got[name] == (pytest.approx(lr(name)), wd), name
    # the head comes first: the logged lr (group 0) is the head's
    assert groups[0]["lr"] == 1e-3
    assert len({(g["lr"], g["weight_decay"]) for g in groups}) == len(groups) == 10


def test_finetune_linear_probe_groups():
    model = _model()
    probe = LinearProbe(16, 2)
    cfg = FinetuneConfig(mode="linear", lr=1e-2, weight_decay=0.1)
    got = _by_name(model, _param_groups(model, probe, cfg), probe)
    assert got == {"probe.linear.weight": (1e-2, 0.1), "probe.linear.bias": (1e-2, 0.0)}


# ------------------------------------------------------------------------------ pieces
def test_layer_depth_and_decay():
    assert codebrain_layer_depth("patch_embedding.proj_in.0.weight", 8) == 0
    assert codebrain_layer_depth("init_conv.0.conv.bias", 8) == 0
    assert codebrain_layer_depth("residual_layer.residual_blocks.0.sgconv.skip_weight", 8) == 1
    assert codebrain_layer_depth("residual_layer.residual_blocks.7.res_conv.bias", 8) == 8
    assert codebrain_layer_depth("norm.weight", 8) == 9
    assert layer_decay_lr("init_conv.0.conv.bias", 1.0, 0.5, 8) == 0.5**9
    assert layer_decay_lr("residual_layer.residual_blocks.7.res_conv.bias", 1.0, 0.5, 8) == 0.5
    assert layer_decay_lr("final_conv.2.conv.weight", 2e-4, 0.5, 8) == 2e-4


class _Hinted(nn.Module):
    def __init__(self, declared: set[str]) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(3, 3))
        self.weight = nn.Parameter(torch.ones(3, 3))
        self.declared = declared

    def no_weight_decay(self) -> set[str]:
        return self.declared


def test_no_weight_decay_hint_is_read_from_the_defining_module_and_survives_copies():
    model = nn.Sequential(nn.Linear(3, 3), _Hinted({"gain"}))
    assert no_weight_decay_names(model) == {"0.bias", "1.gain"}
    assert no_weight_decay_names(copy.deepcopy(model)) == {"0.bias", "1.gain"}
    model[1].gain.requires_grad_(False)
    groups = param_groups(model, 0.1)
    assert [g["names"] for g in groups] == [["0.weight", "1.weight"], ["0.bias"]]


def test_bad_hint_and_bad_decay_are_one_clear_error():
    with pytest.raises(ValueError, match=r"_Hinted.no_weight_decay\(\) names \['gian'\]"):
        no_weight_decay_names(nn.Sequential(_Hinted({"gian"})))
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        param_groups(nn.Linear(2, 2), -0.1)


def test_merge_param_groups_joins_equal_settings_and_drops_empty_groups():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    merged = merge_param_groups(param_groups(a, 0.1, lr=1e-3) + param_groups(b, 0.1, lr=1e-3))
    assert [(g["lr"], g["weight_decay"], g["names"]) for g in merged] == [
        (1e-3, 0.1, ["weight", "weight"]),
        (1e-3, 0.0, ["bias", "bias"]),
    ]
    frozen = nn.Linear(2, 2).requires_grad_(False)
    assert merge_param_groups(param_groups(frozen, 0.1)) == []
