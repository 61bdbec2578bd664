"""The ``emjax`` command line: ``emjax demo``, ``emjax fit``, ``emjax select`` and ``emjax hmm``.

Bad input (a missing file, a non-numeric field, an unknown option value, an output naming the
input file) gives a one-line error naming the option or the file's 1-based line and column, and
exit code 2; a fit in which every restart failed, or whose best restart has no finite objective,
gives a one-line failure report and exit code 1. Modules: :mod:`.options` (arguments),
:mod:`.table` (reading the input), :mod:`.output` (writing files), one module per subcommand.
"""
from .fit_command import summary
from .main import main
from .options import InputError, build_parser
from .table import read_table

__all__ = ["InputError", "build_parser", "main", "read_table", "summary"]
