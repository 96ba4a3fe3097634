"""JupyterLab on the repository, as ``make lab`` starts it (as a user and as root).

``python -m kgwb.lab [--port 8888] [--ip 127.0.0.1] [--token TOKEN]`` registers this
environment's kernel as ``kgwb`` ("Python (kgwb)", in the environment itself, so nothing is
written to the home folder), then runs ``jupyter lab`` rooted at the repository and opening
``notebooks/``.  As root (containers, cloud notebooks) it adds ``--allow-root``, which Jupyter
requires there.  Without ``--token`` Jupyter makes one and prints the URL with it; on a remote
machine forward the port (``ssh -L 8888:localhost:8888 HOST``) and open that URL, or start it with
``--ip 0.0.0.0`` on a trusted network.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from kgwb import paths

KERNEL_NAME = "kgwb"
KERNEL_DISPLAY_NAME = "Python (kgwb)"


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def register_kernel() -> None:
    """Install this interpreter's kernel spec as ``kgwb`` inside the environment (``sys.prefix``)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ipykernel",
            "install",
            "--sys-prefix",
            "--name",
            KERNEL_NAME,
            "--display-name",
            KERNEL_DISPLAY_NAME,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def lab_command(
    *,
    port: int = 8888,
    ip: str = "127.0.0.1",
    token: str | None = None,
    open_browser: bool = False,
) -> list[str]:
    """The ``jupyter lab`` command line: rooted at the repository, opening ``notebooks/``."""
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={paths.REPO_ROOT}",
        "--ServerApp.default_url=/lab/tree/notebooks",
        f"--ServerApp.port={int(port)}",
        f"--ServerApp.ip={ip}",
        f"--ServerApp.open_browser={open_browser}",
    ]
    if token is not None:
        cmd.append(f"--IdentityProvider.token={token}")
    if running_as_root():
        cmd.append("--allow-root")
    return cmd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kgwb.lab", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("LAB_PORT", 8888)))
    parser.add_argument("--ip", default=os.environ.get("LAB_IP", "127.0.0.1"))
    parser.add_argument("--token", default=None, help="access token (default: Jupyter makes one)")
    parser.add_argument("--browser", action="store_true", help="open a browser")
    args = parser.parse_args(argv)
    register_kernel()
    cmd = lab_command(port=args.port, ip=args.ip, token=args.token, open_browser=args.browser)
    print(
        f"kgwb: JupyterLab on {args.ip}:{args.port} (kernel '{KERNEL_DISPLAY_NAME}'); remote "
        f"machine: ssh -L {args.port}:localhost:{args.port} HOST, then open the URL with the "
        "token printed below",
        file=sys.stderr,
    )
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
