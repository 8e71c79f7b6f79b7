"""Export a :class:`codebrain.CodeBrain` to ONNX (and check it with onnxruntime).

The model is exported in eval mode with a fixed input shape ``(batch_size, n_chans, n_times)``
(the classification head fixes ``n_times``); the FFT convolution becomes ONNX ``DFT`` nodes.
Files are written atomically: a failed export never leaves a partial ``.onnx`` behind.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from codebrain.utils.check import check_int, check_option
from codebrain.utils.io import atomic_path

__all__ = ["export_onnx", "check_onnx", "DEFAULT_OPSET"]

logger = logging.getLogger(__name__)

#: ONNX opset used by default (``DFT`` with the signal length as an input needs opset 20).
DEFAULT_OPSET = 20


class _ExportWrapper(nn.Module):
    """A single-output view of the model: class logits, or features / token logits."""

    def __init__(self, model: nn.Module, output: str) -> None:
        super().__init__()
        self.model = model
        self.output = output

    def forward(self, inputs: torch.Tensor):
        if self.output == "features":
            return self.model.encode(inputs)
        if self.output == "token_logits":
            return self.model.token_logits(inputs)
        return self.model.classify(inputs)


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    batch_size: int = 1,
    n_times: int | None = None,
    opset: int = DEFAULT_OPSET,
    output: str = "logits",
    dynamic_batch: bool = False,
) -> Path:
    """Export ``model`` (a ``CodeBrain``) to an ONNX file.

    Parameters
    ----------
    model : CodeBrain
        Exported in eval mode (its mode is restored afterwards).
    path : path-like
        Destination ``.onnx`` file (written atomically; parent folders are created).
    batch_size : int
        Batch size of the example input.
    n_times : int, optional
        Samples per input; defaults to ``model.n_times``.
    opset : int
        ONNX opset version (>= 20).
    output : {"logits", "features", "token_logits"}
        What the graph returns: class logits ``(B, n_outputs)``, features ``(B, C, P, D)``
        or the two token-logit tensors ``(B, C, P, K)``.
    dynamic_batch : bool
        Export the batch dimension as symbolic (any batch size >= 1 at run time).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    TypeError
        ``batch_size`` or ``opset`` is not an int.
    ValueError
        Invalid ``batch_size``, ``opset`` or ``output``.
    """
    check_option("output", output, ("logits", "features", "token_logits"))
    check_int("batch_size", batch_size)
    check_int("opset", opset, minimum=20)  # ONNX DFT with a length input
    path = Path(path)
    n_times = model.n_times if n_times is None else n_times
    param = next(model.parameters())
    # a size-1 example dimension is specialised by torch.export: trace a dynamic batch with 2
    example_batch = max(batch_size, 2) if dynamic_batch else batch_size
    example = torch.zeros(
        example_batch, model.n_chans, n_times, dtype=param.dtype, device=param.device
    )
    was_training = model.training
    model.eval()
    wrapper = _ExportWrapper(model, output).eval()
    dynamic_shapes = None
    if dynamic_batch:
        dynamic_shapes = {"inputs": {0: torch.export.Dim("batch", min=1)}}
    names = ["logits_t", "logits_f"] if output == "token_logits" else [output]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # exporter chatter (deprecations, fallbacks)
            program = torch.onnx.export(
                wrapper,
                (example,),
                dynamo=True,
                opset_version=opset,
                input_names=["inputs"],
                output_names=names,
                dynamic_shapes=dynamic_shapes,
                verbose=False,
            )
        with atomic_path(path) as tmp:
            program.save(str(tmp))
    finally:
        model.train(was_training)
    logger.info("Exported ONNX model (%s, opset %d) to %s", output, opset, path)
    return path


def check_onnx(
    model: nn.Module, path: str | os.PathLike, inputs: torch.Tensor, output: str = "logits"
) -> float:
    """Run ``path`` with onnxruntime and return the max relative difference to ``model``.

    Parameters
    ----------
    model : CodeBrain
    path : path-like
        An ONNX file from :func:`export_onnx`.
    inputs : torch.Tensor, shape (B, C, T)
    output : str
        As given to :func:`export_onnx`.

    Returns
    -------
    float
        ``max |onnx - torch| / max |torch|`` over all outputs.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: inputs.detach().cpu().numpy()})
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = _ExportWrapper(model, output)(inputs)
    finally:
        model.train(was_training)
    expected = expected if isinstance(expected, tuple) else (expected,)
    worst = 0.0
    for g, e in zip(got, expected, strict=True):
        e = e.detach().cpu().double()
        diff = (torch.from_numpy(g).double() - e).abs().max()
        worst = max(worst, float(diff / e.abs().max().clamp_min(1e-12)))
    return worst
