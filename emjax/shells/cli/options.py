"""The command line's arguments: one parser with the subcommands demo, fit, select and hmm."""
from __future__ import annotations

import argparse

import jax

from ...components.gaussian import COVARIANCE_TYPES
from ...models.gaussian_mixture import INIT_METHODS
from ...selection.select import CRITERIA

HMM_EMISSIONS = ("gaussian", "poisson", "categorical")


class InputError(Exception):
    """Bad command-line input: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise InputError(f"{message} (see '{self.prog} --help')")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return value


def covariance_list(text: str) -> tuple:
    """argparse type: comma-separated covariance types, or "all"."""
    types = COVARIANCE_TYPES if text == "all" else tuple(t.strip() for t in text.split(","))
    unknown = [t for t in types if t not in COVARIANCE_TYPES]
    if unknown or len(set(types)) != len(types):
        raise argparse.ArgumentTypeError(f"must be 'all' or distinct names among "
                                         f"{', '.join(COVARIANCE_TYPES)}; got {text!r}")
    return types


def component_list(text: str) -> tuple:
    """argparse type: numbers of components as "1-6", "2,3,5" or a mix, each >= 1."""
    ks = []
    for token in text.split(","):
        low, _, high = token.strip().partition("-")
        try:
            ks += range(int(low), int(high or low) + 1)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be numbers and ranges such as 1-6 or 2,3,5; "
                                             f"got {text!r}") from None
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"must name numbers of components >= 1; got {text!r}")
    return tuple(sorted(set(ks)))


def build_parser() -> argparse.ArgumentParser:
    from ... import __version__

    parser = _Parser(prog="emjax", description="Batched Expectation-Maximization on JAX.")
    parser.add_argument("--version", action="version",
                        version=f"emjax {__version__} (jax {jax.__version__})")
    commands = parser.add_subparsers(dest="command", metavar="{demo,fit,select,hmm}")

    demo = commands.add_parser("demo", help="fit Old Faithful and a generated mixture, write a PNG "
                               "(needs matplotlib: pip install 'emjax[plot]')")
    demo.add_argument("--n-init", type=positive_int, default=1000, help="restarts per dataset (default 1000)")
    demo.add_argument("--out", default="emjax-demo.png", help="PNG to write (default emjax-demo.png)")

    fit = commands.add_parser("fit", help="fit a Gaussian mixture to a CSV or .npy file")
    _data_options(fit)
    _mixture_options(fit, default_n_init=1000)
    fit.add_argument("--n-components", type=positive_int, required=True, help="number of components K")
    fit.add_argument("--covariance", default="full", choices=COVARIANCE_TYPES)
    fit.add_argument("--labels-out", help="write each row's component and responsibilities as CSV")

    select = commands.add_parser("select", help="fit every number of components and covariance "
                                 "type, and pick the best by BIC, AIC or ICL")
    _data_options(select)
    _mixture_options(select, default_n_init=10)
    select.add_argument("--components", type=component_list, default=(1, 2, 3, 4, 5),
                        help="numbers of components to try, e.g. 1-6 or 2,3,5 (default 1-5)")
    select.add_argument("--covariance", type=covariance_list, default=("full",),
                        help="covariance types to try, comma-separated, or 'all' (default full)")
    select.add_argument("--criterion", default="bic", choices=CRITERIA, help="lower is better (default bic)")
    select.add_argument("--labels-out", help="write each row's component and responsibilities "
                        "under the chosen model as CSV")

    hmm = commands.add_parser("hmm", help="fit a hidden Markov model to sequences in a CSV or .npy file")
    _data_options(hmm)
    _fit_options(hmm, default_n_init=10, unit="sequence")
    hmm.add_argument("--sequence-column", help="column (name or 1-based number) holding each row's "
                     "sequence id; rows are grouped by it in file order (default: one sequence)")
    hmm.add_argument("--n-states", type=positive_int, required=True, help="number of hidden states")
    hmm.add_argument("--emission", default="gaussian", choices=HMM_EMISSIONS,
                     help="emission family (default gaussian; categorical: integer codes from 0)")
    hmm.add_argument("--covariance", default="full", choices=COVARIANCE_TYPES,
                     help="Gaussian emissions' covariance type (default full)")
    hmm.add_argument("--states-out", help="write each row's Viterbi state as CSV")
    return parser


def _data_options(command) -> None:
    command.add_argument("data", help="CSV (optional header row, '#' comments) or .npy, rows = samples")
    command.add_argument("--delimiter", help="CSV field separator, e.g. ';' or tab (default: "
                         "detected among tab, ';' and ',')")
    command.add_argument("--columns", help="columns to use: header names, 1-based numbers and "
                         "ranges, comma-separated, e.g. 1-4 or sepal_length,petal_width (default all)")
    command.add_argument("--out", help="write the result as JSON to this file")


def _fit_options(command, default_n_init: int, unit: str = "sample") -> None:
    command.add_argument("--n-init", type=positive_int, default=default_n_init,
                         help=f"restarts (default {default_n_init})")
    command.add_argument("--max-iter", type=positive_int, default=200,
                         help="EM iterations per restart (default 200)")
    command.add_argument("--tol", type=float, default=1e-3,
                         help=f"stop when the per-{unit} objective changes by less (default 1e-3)")
    command.add_argument("--seed", type=int, default=0, help="seed of the restarts' PRNG key (default 0)")
    command.add_argument("--verbose", action="store_true",
                         help="show the compile time, then the iteration and best objective while "
                         "the fit runs (a progress bar on a terminal with tqdm installed, else a "
                         "line every 2 s, on stderr); the verbose program is compiled apart and "
                         "not kept in the persistent cache")


def _mixture_options(command, default_n_init: int) -> None:
    _fit_options(command, default_n_init)
    command.add_argument("--missing", default="error", choices=("error", "marginalize"),
                         help="NaN or empty (missing) values: refuse them (default) or marginalise them out")
    command.add_argument("--init", default="kmeans++", choices=INIT_METHODS, help="how restarts start")
