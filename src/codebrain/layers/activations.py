"""The activation classes a configuration may name, resolved without importing anything.

A ``config.json`` stores the model's activation as an import path
(``"torch.nn.modules.activation.ELU"``, the form braindecode writes). Loading such a folder must
never import a module named by the file: importing ``some.package.__main__`` runs a program.
:func:`resolve_activation` therefore looks the name up in a fixed allow-list of the element-wise
activation classes of ``torch.nn``; anything else is refused with a ``ValueError``.
"""

from __future__ import annotations

from torch import nn

__all__ = ["ALLOWED_ACTIVATIONS", "activation_path", "resolve_activation"]

#: element-wise activations that take no required constructor argument
ALLOWED_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.CELU,
    nn.ELU,
    nn.GELU,
    nn.Hardsigmoid,
    nn.Hardswish,
    nn.Hardtanh,
    nn.Identity,
    nn.LeakyReLU,
    nn.LogSigmoid,
    nn.Mish,
    nn.PReLU,
    nn.ReLU,
    nn.ReLU6,
    nn.RReLU,
    nn.SELU,
    nn.Sigmoid,
    nn.SiLU,
    nn.Softplus,
    nn.Softsign,
    nn.Tanh,
    nn.Tanhshrink,
)


def activation_path(cls: type[nn.Module]) -> str:
    """The import path stored in configs, e.g. ``"torch.nn.modules.activation.ELU"``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _names(cls: type[nn.Module]) -> tuple[str, ...]:
    return (activation_path(cls), f"torch.nn.{cls.__name__}", f"nn.{cls.__name__}", cls.__name__)


_BY_NAME: dict[str, type[nn.Module]] = {
    name: cls for cls in ALLOWED_ACTIVATIONS for name in _names(cls)
}


def resolve_activation(
    activation: type[nn.Module] | str, *, what: str = "activation"
) -> type[nn.Module]:
    """Return the activation class for a class or a configuration name.

    Parameters
    ----------
    activation : type of nn.Module or str
        A class (any ``nn.Module`` subclass passed from Python is accepted), or the name of one
        of :data:`ALLOWED_ACTIVATIONS` as an import path (``"torch.nn.modules.activation.ReLU"``),
        ``"torch.nn.ReLU"``, ``"nn.ReLU"`` or ``"ReLU"``. Names are looked up, never imported.
    what : str
        The argument's name, for error messages.

    Raises
    ------
    ValueError
        A string that is not one of the allowed activations.
    TypeError
        Neither a string nor an ``nn.Module`` class.
    """
    if isinstance(activation, str):
        try:
            return _BY_NAME[activation]
        except KeyError:
            allowed = ", ".join(c.__name__ for c in ALLOWED_ACTIVATIONS)
            raise ValueError(
                f"{what} {activation!r} is not an allowed activation; expected one of torch.nn's "
                f"{allowed} (by import path, e.g. 'torch.nn.modules.activation.ReLU'); names in a "
                "config are never imported."
            ) from None
    if not (isinstance(activation, type) and issubclass(activation, nn.Module)):
        raise TypeError(f"{what} must be an nn.Module class or its name, got {activation!r}.")
    if activation is nn.Module:
        raise TypeError(f"{what} must be an activation class, got the base class torch.nn.Module.")
    return activation
