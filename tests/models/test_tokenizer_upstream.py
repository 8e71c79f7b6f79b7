"""The authors' tokenizer checkpoint (``CodeBrain_Tokenizer.pth``) and its conversion.

The released file cannot be downloaded here, so the fixture is written from the authors' code
(``Models/modeling_tokenizer.py``, ``modeling_finetune.py``, ``norm_ema_quantizer.py`` in
``W-Yinghao/eeg2025/NIPS/CodeBrain``): every key name and shape of their ``Tokenizer``, which a
third-party load test of the released file also reports as 325 tensors.
"""

from __future__ import annotations

import argparse
import math

import pytest
import torch

from codebrain.models.checkpoints import (
    convert_upstream_tokenizer_state_dict,
    is_upstream_tokenizer_state_dict,
    to_upstream_tokenizer_state_dict,
)
from codebrain.models.tokenizer import TFDualTokenizer, TokenizerConfig


def upstream_tokenizer_shapes(
    *,
    d: int = 200,
    depth: int = 12,
    decoder_depth: int = 3,
    conv: int = 8,
    k_t: int = 4096,
    k_f: int = 4096,
    code: int = 32,
    out: int = 200,
    mlp: int = 800,
) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the authors' ``Tokenizer`` state dict (release sizes by default)."""
    shapes: dict[str, tuple[int, ...]] = {}
    half = conv // 2
    for branch in ("t_convs", "f_convs"):
        pre = f"encoder.patch_embed.{branch}.conv."
        for idx, c_in, c_out, k in ((0, 1, conv, 15), (4, conv, half, 3), (8, half, half, 3)):
            shapes[f"{pre}{idx}.weight"] = (c_out, c_in, 1, k)
            shapes[f"{pre}{idx}.bias"] = (c_out,)
            for name in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{pre}{idx + 1}.{name}"] = (c_out,)
            shapes[f"{pre}{idx + 1}.num_batches_tracked"] = ()

    def transformer(prefix: str, n_blocks: int) -> None:
        shapes[f"{prefix}.cls_token"] = (1, 1, d)
        shapes[f"{prefix}.pos_embed"] = (1, 129, d)
        shapes[f"{prefix}.time_embed"] = (1, 60, d)
        for i in range(n_blocks):
            b = f"{prefix}.blocks.{i}."
            shapes.update(
                {
                    b + "norm1.weight": (d,),
                    b + "norm1.bias": (d,),
                    b + "attn.q_bias": (d,),
                    b + "attn.v_bias": (d,),
                    b + "attn.qkv.weight": (3 * d, d),
                    b + "attn.proj.weight": (d, d),
                    b + "attn.proj.bias": (d,),
                    b + "norm2.weight": (d,),
                    b + "norm2.bias": (d,),
                    b + "mlp.fc1.weight": (mlp, d),
                    b + "mlp.fc1.bias": (mlp,),
                    b + "mlp.fc2.weight": (d, mlp),
                    b + "mlp.fc2.bias": (d,),
                }
            )
        shapes[f"{prefix}.fc_norm.weight"] = (d,)
        shapes[f"{prefix}.fc_norm.bias"] = (d,)

    transformer("encoder", depth)
    for name in ("decoder_t", "decoder_f"):
        shapes[f"{name}.patch_embed.proj.weight"] = (d, code, 1, 1)
        shapes[f"{name}.patch_embed.proj.bias"] = (d,)
        transformer(name, decoder_depth)
    for name, d_out in (
        ("encode_task_layer_t", code),
        ("encode_task_layer_f", code),
        ("decode_task_layer_temp", out),
        ("decode_task_layer_xrec", out),
        ("decode_task_layer_angle", out),
    ):
        shapes[f"{name}.0.weight"] = (d, d)
        shapes[f"{name}.0.bias"] = (d,)
        shapes[f"{name}.2.weight"] = (d_out, d)
        shapes[f"{name}.2.bias"] = (d_out,)
    for book, k in (("quantize_t", k_t), ("quantize_f", k_f)):
        shapes[f"{book}.cluster_size"] = (k,)
        shapes[f"{book}.embedding.weight"] = (k, code)
        shapes[f"{book}.embedding.cluster_size"] = (k,)
        shapes[f"{book}.embedding.embed_avg"] = (k, code)
        shapes[f"{book}.embedding.initted"] = (1,)
    return shapes


# A tiny instance of the same layout: 40-sample patches, conv 4 -> width 2*2*5 = 20.
TINY = dict(d=20, depth=2, decoder_depth=1, conv=4, k_t=16, k_f=12, code=8, out=40, mlp=80)


def upstream_state_dict(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict:
    """Random tensors of the given shapes, with the authors' dtypes and plausible values."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.tensor(7)
        elif key.endswith("initted"):
            sd[key] = torch.ones(1)
        elif key.endswith("running_var"):
            sd[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith("embedding.weight"):
            sd[key] = torch.nn.functional.normalize(torch.randn(shape, generator=g), dim=-1)
        elif key.endswith("cluster_size"):
            sd[key] = torch.rand(shape, generator=g) * 10
        else:
            sd[key] = torch.randn(shape, generator=g) * 0.1 + (
                1.0 if "norm" in key and key.endswith("weight") else 0.0
            )
    return sd


def tiny_model() -> TFDualTokenizer:
    cfg = TokenizerConfig(
        patch_size=40,
        embed_dim=20,
        conv_channels=4,
        depth=2,
        num_heads=4,
        decoder_depth=1,
        codebook_size_t=16,
        codebook_size_f=12,
        code_dim=8,
    )
    return TFDualTokenizer(cfg).eval()


# ------------------------------------------------------------------------------ coverage
def test_release_key_coverage_is_exact() -> None:
    """All 325 tensors of the release map onto the default TFDualTokenizer with their shapes."""
    shapes = upstream_tokenizer_shapes()
    assert len(shapes) == 325
    sd = {"module." + k: torch.zeros(s) for k, s in shapes.items()}  # DataParallel prefix
    assert is_upstream_tokenizer_state_dict(sd)
    model = TFDualTokenizer()
    converted, report = convert_upstream_tokenizer_state_dict(sd, model)
    assert report.ok, report.describe()
    assert set(converted) == set(model.state_dict())
    assert sorted(report.dropped) == sorted(
        f"module.quantize_{t}.embedding.{n}" for t in "tf" for n in ("cluster_size", "embed_avg")
    )
    assert sorted(report.filled) == sorted(
        f"codebook_{t}.{n}" for t in "tf" for n in ("embed_sum", "usage", "num_restarts")
    )
    assert report.renamed["module.encoder.pos_embed"] == "encoder.chan_embed"
    assert report.renamed["module.decoder_f.fc_norm.bias"] == "decoder_f.norm.bias"
    assert report.renamed["module.encoder.patch_embed.f_convs.conv.9.running_var"] == (
        "tfconv.spectral.9.running_var"
    )
    assert report.renamed["module.decode_task_layer_angle.2.weight"] == "head_phase.2.weight"
    assert converted["decoder_in_t.weight"].shape == (200, 32)
    assert not is_upstream_tokenizer_state_dict(model.state_dict())


def test_report_names_missing_unexpected_and_misshaped_keys() -> None:
    model = tiny_model()
    sd = upstream_state_dict(upstream_tokenizer_shapes(**TINY))
    del sd["encoder.blocks.1.attn.q_bias"]
    sd["encoder.bogus"] = torch.zeros(3)
    sd["encode_task_layer_f.2.bias"] = torch.zeros(7)
    _, report = convert_upstream_tokenizer_state_dict(sd, model, strict=False)
    assert report.missing == ["encoder.blocks.1.attn.q_bias"]
    assert report.unexpected == ["encoder.bogus"]
    assert report.shape_mismatch == {"proj_f.2.bias": ((7,), (8,))}
    with pytest.raises(ValueError, match=r"1 missing key\(s\): encoder.blocks.1.attn.q_bias"):
        convert_upstream_tokenizer_state_dict(sd, model)
    with pytest.raises(ValueError, match="encoder.bogus"):
        model.load_state_dict(sd)  # the public path raises the same report


def test_round_trip_through_the_authors_naming() -> None:
    model = tiny_model()
    theirs = to_upstream_tokenizer_state_dict(model.state_dict(), data_parallel=True)
    assert {k.removeprefix("module."): tuple(v.shape) for k, v in theirs.items()} == (
        upstream_tokenizer_shapes(**TINY)
    )
    back, report = convert_upstream_tokenizer_state_dict(theirs, model)
    assert report.ok
    for k, v in model.state_dict().items():
        if k.endswith(("usage", "embed_sum")):
            continue  # statistics the authors do not store (re-derived)
        assert torch.equal(back[k], v), k


# ----------------------------------------------------------------------- loaded weights
def test_loaded_weights_give_the_authors_token_ids_on_pinned_pieces() -> None:
    """With the authors' weights loaded, the pieces that fix their token ids can be written
    out here independently: TFConv's spectral branch reads Re(DFT) of each patch, and each id
    is the code of largest cosine similarity to the l2-normalised projection."""
    model = tiny_model()
    sd = upstream_state_dict(upstream_tokenizer_shapes(**TINY))
    model.load_state_dict({"module." + k: v for k, v in sd.items()})
    x = torch.randn(3, 5, 4 * 40)
    patches = x.reshape(3, 5, 4, 40)

    # 1. The spectral branch's input: the real part of the full 40-point DFT (matrix form).
    seen = {}

    def keep_input(module, inputs, output) -> None:
        seen["x"] = inputs[0]

    hook = model.tfconv.spectral[0].register_forward_hook(keep_input)
    model.encode(x)
    hook.remove()
    n = torch.arange(40, dtype=torch.float64)
    cos_matrix = torch.cos(2 * math.pi * n[:, None] * n[None, :] / 40)  # Re(e^{-i..})
    ref = (patches.double() @ cos_matrix).reshape(3, 1, 20, 40)
    assert torch.allclose(seen["x"].double(), ref, atol=1e-4)

    # 2. Nearest l2-normalised code = argmax cosine to the authors' codebook tensors.
    ids_t, ids_f = model.tokenize(x)
    h = model.encode(x)
    for ids, head, book in (
        (ids_t, "encode_task_layer_t", "quantize_t"),
        (ids_f, "encode_task_layer_f", "quantize_f"),
    ):
        w0, b0, w2, b2 = (sd[f"{head}.{i}"] for i in ("0.weight", "0.bias", "2.weight", "2.bias"))
        z = torch.tanh(h @ w0.T + b0) @ w2.T + b2  # the authors' Linear-Tanh-Linear
        z = z / z.norm(dim=-1, keepdim=True)
        codes = sd[f"{book}.embedding.weight"]
        assert torch.equal(ids, (z @ codes.T).argmax(-1))

    # 3. Five channels use channel slots 0 (class token) to 5: changing the table's rows
    # beyond them changes nothing, changing slot 5 (the fifth channel's) does.
    before = model.encode(x)
    with torch.no_grad():
        model.encoder.chan_embed[:, 6:] += 10.0
    assert torch.equal(before, model.encode(x))
    with torch.no_grad():
        model.encoder.chan_embed[:, 5] += 10.0
    assert not torch.allclose(before, model.encode(x))


def _write_release_file(path, sd) -> None:
    """The authors' save_model layout: {"model", "optimizer", "epoch", "args"}."""
    args = argparse.Namespace(epochs=20, lr=1e-4, codebook_n_emd_t=16, output_dir="")
    torch.save({"model": sd, "optimizer": {"state": {}}, "epoch": 19, "args": args}, path)


def test_from_pretrained_folder_with_the_release_file(tmp_path) -> None:
    sd = upstream_state_dict(upstream_tokenizer_shapes(**TINY))
    folder = tmp_path / "YjMajy-CodeBrain"
    folder.mkdir()
    _write_release_file(folder / "CodeBrain_Tokenizer.pth", sd)
    loaded = TFDualTokenizer.from_pretrained(folder, num_heads=4)
    assert not loaded.training
    cfg = loaded.config
    assert (cfg.patch_size, cfg.embed_dim, cfg.depth, cfg.decoder_depth) == (40, 20, 2, 1)
    assert (cfg.codebook_size_t, cfg.codebook_size_f, cfg.code_dim) == (16, 12, 8)
    assert (cfg.max_chans, cfg.max_patches, cfg.conv_channels) == (128, 60, 4)
    assert torch.equal(loaded.codebook_f.embed, sd["quantize_f.embedding.weight"])
    assert torch.equal(
        loaded.tfconv.temporal[5].running_var, sd["encoder.patch_embed.t_convs.conv.5.running_var"]
    )
    ref = tiny_model()
    ref.load_state_dict(sd)
    x = torch.randn(2, 3, 3 * 40)
    assert all(torch.equal(a, b) for a, b in zip(loaded.tokenize(x), ref.tokenize(x), strict=True))


def test_cli_convert_writes_a_tokenizer_folder(tmp_path, capsys) -> None:
    from codebrain.cli import main

    sd = upstream_state_dict(upstream_tokenizer_shapes(**TINY))
    _write_release_file(tmp_path / "CodeBrain_Tokenizer.pth", sd)
    rc = main(
        [
            "convert",
            str(tmp_path / "CodeBrain_Tokenizer.pth"),
            str(tmp_path / "tok"),
            "--tokenizer-heads",
            "4",
        ]
    )
    assert rc == 0 and "Converted tokenizer" in capsys.readouterr().out
    loaded = TFDualTokenizer.from_pretrained(tmp_path / "tok")
    ref = tiny_model()
    ref.load_state_dict(sd)
    x = torch.randn(2, 3, 2 * 40)
    assert all(torch.equal(a, b) for a, b in zip(loaded.tokenize(x), ref.tokenize(x), strict=True))
    # A tokenizer file that does not fit: one clear line, nothing written.
    bad = dict(sd)
    del bad["encoder.time_embed"]
    _write_release_file(tmp_path / "bad.pth", bad)
    rc = main(["convert", str(tmp_path / "bad.pth"), str(tmp_path / "tok2")])
    err = capsys.readouterr().err
    assert rc != 0 and "encoder.time_embed" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "tok2").exists()
