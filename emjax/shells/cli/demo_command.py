"""``emjax demo``: the demo of :mod:`emjax.shells.demo`, refused at once when matplotlib is missing."""
from __future__ import annotations

import importlib.util

from .options import InputError


def run_demo_command(args) -> None:
    """Checks that matplotlib can be imported (the demo ends by drawing a figure), then runs it."""
    if not matplotlib_installed():
        raise InputError("emjax demo draws a figure with matplotlib, which is not installed; "
                         "install it with: pip install 'emjax[plot]'")
    from ..demo import run_demo

    run_demo(args.out, args.n_init)


def matplotlib_installed() -> bool:
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except ValueError:  # in sys.modules with no spec (e.g. set to None to hide it)
        return False
