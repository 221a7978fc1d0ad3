"""``python -m ogc_lab``: the same command line as ``ogc-lab``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
