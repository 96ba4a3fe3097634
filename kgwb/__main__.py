"""``python -m kgwb`` runs the command line (what ``torchrun … -m kgwb train …`` needs)."""

import sys

from kgwb.cli import main

if __name__ == "__main__":
    sys.exit(main())
