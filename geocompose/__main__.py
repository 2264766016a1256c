"""``python -m geocompose``: the same command line as the ``geocompose`` script."""

import sys

from geocompose.cli.main import main

sys.exit(main())
