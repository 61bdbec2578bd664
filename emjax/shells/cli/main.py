"""The command line's entry point: parses the arguments, runs a subcommand, maps errors to exit codes."""
from __future__ import annotations

import sys

from ...engine.driver import FitError
from .demo_command import run_demo_command
from .fit_command import run_fit
from .hmm_command import run_hmm
from .options import InputError, build_parser
from .select_command import run_select

COMMANDS = {"demo": run_demo_command, "fit": run_fit, "select": run_select, "hmm": run_hmm}


def main(argv=None) -> int:
    """Runs the command line on ``argv`` (``sys.argv[1:]`` by default); returns the exit code:
    0 done, 1 the fit failed (every restart, or a best restart with no finite objective), 2 bad
    input (one line on stderr naming the option, or the file's line and column)."""
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help(sys.stderr)
            return 2
        COMMANDS[args.command](args)
    except SystemExit as done:  # --help and --version
        return done.code or 0
    except InputError as err:
        print(f"emjax: error: {err}", file=sys.stderr)
        return 2
    except FitError as err:
        print(f"emjax: fit failed: {err}", file=sys.stderr)
        return 1
    return 0
