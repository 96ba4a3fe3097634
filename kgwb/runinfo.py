"""What a saved result records about the run: package versions, platform, device, time."""

from __future__ import annotations

import importlib.metadata
import platform
import time

_PACKAGES = (
    "kgwb",
    "numpy",
    "pandas",
    "pyarrow",
    "torch",
    "transformers",
    "torch_geometric",
    "pykeen",
)


def environment_info() -> dict[str, str]:
    """Versions of the packages that shape results (missing ones are left out)."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    out["recorded_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return out
