"""``python -m emjax``: the command line of :mod:`emjax.shells.cli`."""
import sys

from .shells.cli import main

sys.exit(main())
