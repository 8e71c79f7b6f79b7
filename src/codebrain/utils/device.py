"""Device names (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"auto"``) to :class:`torch.device`.

One place that resolves them, with a one-line error when the device cannot be used.

Every command and training loop resolves its ``device`` argument here, so ``--device cuda`` on a
PyTorch built without CUDA says exactly that instead of failing deep inside torch.
"""

from __future__ import annotations

import torch

from codebrain.utils.check import check_type

__all__ = ["resolve_device"]

_KNOWN = ("cpu", "cuda", "mps")


def resolve_device(
    device: str | torch.device | None = None, *, local_rank: int = 0, name: str = "device"
) -> torch.device:
    """Check that ``device`` can be used here and return it as a :class:`torch.device`.

    Parameters
    ----------
    device : str, torch.device or None
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, or ``"auto"`` / ``None`` (a GPU when one
        is visible, else the CPU).
    local_rank : int
        Index of this process on its machine (``torchrun``'s ``LOCAL_RANK``): a bare ``"cuda"``
        (or ``"auto"``) picks GPU ``local_rank % n_gpus``.
    name : str
        How the argument is called in messages (``"--device"`` for a command-line flag).

    Returns
    -------
    torch.device

    Raises
    ------
    TypeError
        ``device`` is not a str, a ``torch.device``, an int (a CUDA index) or None.
    ValueError
        The name is not a device, this PyTorch has no CUDA (or MPS) support, no GPU is visible,
        or the GPU index is out of range.
    """
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    check_type(name, device, (str, torch.device, int), "a device name, a torch.device or None")
    try:
        dev = torch.device(device.strip() if isinstance(device, str) else device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"{name} {device!r} is not a device; expected cpu, cuda, cuda:N, mps or auto."
        ) from None
    if dev.type not in _KNOWN:
        raise ValueError(
            f"{name} {device!r} is not supported; expected cpu, cuda, cuda:N, mps or auto."
        )
    if dev.type == "cuda":
        if not torch.backends.cuda.is_built():
            raise ValueError(
                f"{name} {device!r}: this PyTorch ({torch.__version__}) was built without CUDA "
                "support; use cpu, or install a CUDA build of PyTorch."
            )
        if not torch.cuda.is_available():
            raise ValueError(
                f"{name} {device!r}: no CUDA GPU is visible to this PyTorch "
                f"({torch.__version__}; check the driver and CUDA_VISIBLE_DEVICES), or use cpu."
            )
        n = torch.cuda.device_count()
        index = dev.index if dev.index is not None else local_rank % n
        if index >= n:
            raise ValueError(
                f"{name} {device!r}: this machine has {n} visible CUDA GPU(s) "
                f"(cuda:0 .. cuda:{n - 1})."
            )
        return torch.device("cuda", index)
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{name} {device!r}: MPS is not available in this PyTorch.")
    return dev
