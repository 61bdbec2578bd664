"""Sphinx configuration for emjax's documentation (``make docs``: built with warnings as errors).

Notebooks are rendered from their stored form and never executed here (``tests/shells/test_notebooks.py``
executes them); they are copied from ``notebooks/`` into ``docs/notebooks/`` (git-ignored) at
every build so that the repository keeps one copy.
"""
from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import emjax  # noqa: E402

project = "emjax"
author = "emjax contributors"
copyright = "emjax contributors, Apache-2.0"
release = version = emjax.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

# ".rst" first: autosummary writes its generated pages (reStructuredText) with the first suffix.
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
try:  # the scikit-learn shells' page joins the reference once the package is there
    import emjax.sklearn  # noqa: F401
except ImportError:
    exclude_patterns.append("api/sklearn.md")
root_doc = "index"

# Notebooks: stored outputs only (they are stored without outputs), never executed at build time.
nb_execution_mode = "off"
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# API reference: docstrings are Google style ("Args:", "Returns:", "Attributes:", "Examples:").
autosummary_generate = True
autosummary_imported_members = True
# Members a class inherits from emjax classes are listed too (GaussianMixture's log_prob comes from
# the generic mixture); those of Python's, NumPy's and scikit-learn's base classes are not.
autodoc_default_options = {"members": True, "show-inheritance": False,
                           "inherited-members": "tuple,int,object,Exception,Warning,ABC,Enum,IntEnum,"
                                                "BaseEstimator,_MetadataRequester,_SetOutputMixin,"
                                                "DensityMixin,ClusterMixin,TransformerMixin"}
autodoc_member_order = "bysource"
# An estimator's constructor argument and a result field share names (``n_iter``): Sphinx finds two
# targets for such a cross-reference and warns; either target is a right link.
suppress_warnings = ["ref.python"]
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# "Attributes:" as fields (not attribute directives, which autodoc's members would duplicate).
napoleon_use_ivar = True

html_theme = "furo"
html_title = f"emjax {release}"
#: Toctree globs that may match nothing yet: "coming from" guides that other changes add. Sphinx
#: gives its empty-glob warning no type, so ``suppress_warnings`` cannot name it.
OPTIONAL_GLOBS = ("guide/sklearn*", "guide/hmmlearn*")


class OptionalGlobFilter(logging.Filter):
    """Drops Sphinx's "didn't match any documents" warning for :data:`OPTIONAL_GLOBS` only."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("didn't match any documents" in message
                    and any(repr(pattern) in message for pattern in OPTIONAL_GLOBS))


def copy_notebooks(app) -> None:
    """Copy ``notebooks/*.ipynb`` into ``docs/notebooks/`` (rendered, not executed)."""
    target = DOCS / "notebooks"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir()
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        shutil.copy2(notebook, target / notebook.name)


def setup(app):
    logging.getLogger("sphinx.sphinx.directives.other").addFilter(OptionalGlobFilter())
    app.connect("builder-inited", copy_notebooks)
