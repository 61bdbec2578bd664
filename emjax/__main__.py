"""``python -m emjax``: the command line of :mod:`emjax.cli`."""
import sys

from .cli import main

sys.exit(main())
