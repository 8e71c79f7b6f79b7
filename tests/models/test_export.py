"""Export paths of CodeBrain: torch.compile (fullgraph), torch.export, ONNX + onnxruntime, CLI."""

from __future__ import annotations

import importlib.util
import warnings

import pytest
import torch

from _fixtures import make_tiny_codebrain
from codebrain import CodeBrain
from codebrain.cli import main as cli_main
from codebrain.export import check_onnx, export_onnx

# The tiny model, narrower (width 8) and with 32-code books.
SIZES = dict(res_channels=8, skip_channels=8, codebook_size_t=32, codebook_size_f=32)

needs_ort = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="onnx / onnxruntime not installed",
)
# The dynamo ONNX exporter and torch.export emit deprecation/user warnings from torch internals
# that are not about our model; the exported graph is checked numerically instead.
onnx_warnings = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def _model(**kw) -> CodeBrain:
    return make_tiny_codebrain(seed=0, **{**SIZES, **kw}).eval()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("window", [1, pytest.param(3, marks=pytest.mark.slow)])
def test_compile_fullgraph_without_graph_breaks(window):
    """Dynamo captures the whole encoder in one graph (eager backend: no C++ build)."""
    torch._dynamo.reset()
    m = _model(swa_window_size=window)
    x = torch.randn(2, 3, 400)
    compiled = torch.compile(m.encode, fullgraph=True, backend="eager")
    with torch.no_grad():
        assert _rel(compiled(x), m.encode(x)) <= 1e-6
    torch._dynamo.reset()


@pytest.mark.slow
# FFTs are complex by nature (fft_r2c/c2r run as extern kernels); inductor warns that it does
# not generate code for complex ops, which is a performance note, not a correctness issue.
@pytest.mark.filterwarnings(
    "ignore:Torchinductor does not support code generation for complex operators:UserWarning"
)
def test_compile_inductor_fullgraph_matches_eager():
    torch._dynamo.reset()
    m = _model(num_res_layers=1)
    x = torch.randn(2, 3, 400)
    compiled = torch.compile(m, fullgraph=True)
    with torch.no_grad():
        assert _rel(compiled(x), m(x)) <= 1e-5
    torch._dynamo.reset()


@onnx_warnings
@pytest.mark.parametrize("window", [pytest.param(1, marks=pytest.mark.slow), 5])
def test_torch_export_matches_eager(window):
    m = _model(swa_window_size=window)
    x = torch.randn(2, 3, 400)
    program = torch.export.export(m, (x,))
    with torch.no_grad():
        expected = m(x)
    assert _rel(program.module()(x), expected) <= 1e-5


@needs_ort
@onnx_warnings
def test_onnx_export_onnxruntime_parity(tmp_path):
    m = _model(num_res_layers=1, swa_window_size=3, n_times=450)  # 50 samples dropped
    out = tmp_path / "sub" / "m.onnx"
    assert export_onnx(m, out, batch_size=2) == out
    assert out.is_file() and [p.name for p in out.parent.iterdir()] == ["m.onnx"]  # atomic
    x = torch.randn(2, 3, 450)
    assert check_onnx(m, out, x) <= 1e-4
    assert not m.training


@needs_ort
@onnx_warnings
@pytest.mark.slow
def test_onnx_export_features_and_cli(tmp_path):
    m = _model()
    model_dir = tmp_path / "model"
    m.save_pretrained(model_dir)
    out = tmp_path / "cli.onnx"
    argv = ["export", "--model", str(model_dir), "--out", str(out), "--dynamic-batch"]
    assert cli_main(argv) == 0
    assert check_onnx(m, out, torch.randn(3, 3, 400)) <= 1e-4  # another batch size
    feats = tmp_path / "feats.onnx"
    export_onnx(m, feats, batch_size=1, output="features")
    assert check_onnx(m, feats, torch.randn(1, 3, 400), output="features") <= 1e-4


def test_export_argument_errors(tmp_path):
    m = _model()
    with pytest.raises(ValueError, match="output must be"):
        export_onnx(m, tmp_path / "a.onnx", output="nope")
    with pytest.raises(ValueError, match="batch_size"):
        export_onnx(m, tmp_path / "a.onnx", batch_size=0)
    with pytest.raises(ValueError, match="opset"):
        export_onnx(m, tmp_path / "a.onnx", opset=13)
    assert not list(tmp_path.iterdir())


def test_cli_export_user_errors(tmp_path, capsys):
    assert cli_main(["export", "--model", str(tmp_path / "missing"), "--out", "m.onnx"]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert cli_main(["export", "--model", str(tmp_path), "--out", "m.txt"]) == 2
    assert "must end with .onnx" in capsys.readouterr().err
    assert cli_main(["export", "--model", str(tmp_path), "--out", "m.onnx", "--opset", "17"]) == 2
    assert "--opset" in capsys.readouterr().err


def test_cli_bench_user_errors(tmp_path, capsys):
    assert cli_main(["bench", "--script", str(tmp_path / "nope.py")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_exported_model_ignores_eval_caches():
    """Exporting after eager eval calls (caches filled) still traces from the parameters."""
    m = _model()
    x = torch.randn(1, 3, 400)
    with torch.no_grad():
        m(x)  # fills the SGConv spectrum and folded-weight caches
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(m, (x,))
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(1.01)
        expected = m(x)
    gm = program.module()
    # the exported program holds its own copies of the parameters: load the edited ones
    gm.load_state_dict(m.state_dict(), strict=False)
    assert _rel(gm(x), expected) <= 1e-5
