"""``python -m mlx_tcn``: the same command line as ``mlx-tcn``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
