"""One place that turns a device name into the device kgwb runs on (text, KGE, recommenders)."""

from __future__ import annotations

from kgwb.errors import KgwbError, UnknownNameError

#: the names every kgwb stage accepts (``cuda:N`` and other torch device types work too)
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | None = "auto") -> str:
    """``auto`` (or ``None``/``""``) → ``cuda`` when torch sees a GPU, else ``cpu``.

    ``cpu`` is returned as is; ``cuda``/``cuda:N`` must be available (a clear error otherwise);
    any other name (``mps``, ``xpu``, …) is checked by :class:`torch.device` and passed on.
    The result is a string, so it can be recorded in ``metrics.json`` as it is.
    """
    import torch

    name = str(device or "auto").strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    try:
        resolved = torch.device(name)
    except RuntimeError as err:
        raise UnknownNameError("device", str(device), list(DEVICES)) from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise KgwbError(f"device {device!r} asked for, but torch sees no CUDA GPU; use auto or cpu")
    return name
