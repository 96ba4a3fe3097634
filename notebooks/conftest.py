"""nbval settings for the notebooks, so that a bare ``pytest --nbval notebooks/`` or
``pytest --nbval-lax notebooks/`` from the repository root (or anywhere) checks them the way the
project means:

* ``--nbval-current-env``: run the cells in this Python environment's kernel, whatever kernel name
  the notebook's metadata holds (unless ``--nbval-kernel-name`` is given);
* ``--nbval-sanitize-with notebooks/nbval_sanitize.cfg`` (resolved from this folder): machine
  paths, timestamps, durations, devices and addresses are masked before outputs are compared.

Every code cell with outputs is marked ``# NBVAL_CHECK_OUTPUT`` (deterministic: counts, sorted
names, the sample's exact tables) or ``# NBVAL_IGNORE_OUTPUT`` (training, timings, plots,
graph views), so strict and lax mode compare the same cells
(``tests/test_notebooks.py`` keeps it so).  Recorded metric values are checked with explicit
tolerances by ``tests/test_pipeline.py``.  Progress bars are off in these kernels
(``KGWB_PROGRESS=0``, read by :func:`kgwb.notebooks.configure_progress`).
"""

from __future__ import annotations

import os
from pathlib import Path

SANITIZE = Path(__file__).resolve().parent / "nbval_sanitize.cfg"


def pytest_configure(config):
    option = config.option
    if not hasattr(option, "nbval_current_env"):  # nbval not installed
        return
    if option.nbval or option.nbval_lax:
        # the kernels nbval starts inherit this: no progress bars in compared outputs, even when
        # pytest runs inside a Jupyter kernel or with progress forced on
        os.environ["KGWB_PROGRESS"] = "0"
    if not option.nbval_kernel_name:
        option.nbval_current_env = True
    if option.nbval_sanitize_with is None:
        option.nbval_sanitize_with = str(SANITIZE)
