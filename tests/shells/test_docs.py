"""The documentation's promises that can be checked without building it (``make docs`` builds it).

- The API reference (docs/api/emjax.md) names every public name of ``emjax.__all__``.
- Every public name has a docstring example (``make doctest`` runs them).
- The README's quick start runs as written, with 16 restarts instead of 1,000 to stay fast.
"""
from __future__ import annotations

import doctest
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import emjax

ROOT = Path(__file__).resolve().parents[2]

#: Names whose example lives in their module's docstring (a tuple and a module: no docstring of
#: their own to hold one).
EXAMPLE_IN_MODULE = {"ACCELERATORS": "emjax.engine.accelerate", "inference": "emjax.inference"}


def test_api_reference_names_every_public_name():
    page = (ROOT / "docs" / "api" / "emjax.md").read_text()
    listed = set(re.findall(r"^   ([A-Za-z_][\w.]*)$", page, flags=re.M))
    assert sorted(set(emjax.__all__) - listed) == []


@pytest.mark.parametrize("name", sorted(emjax.__all__))
def test_public_name_has_a_doctest_example(name):
    if name in EXAMPLE_IN_MODULE:
        obj = __import__(EXAMPLE_IN_MODULE[name], fromlist=["_"])
    else:
        obj = getattr(emjax, name)
    examples = doctest.DocTestParser().get_examples(inspect.getdoc(obj) or "")
    assert examples, f"emjax.{name} has no >>> example in its docstring"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.slow
def test_readme_quick_start_runs():
    import jax

    blocks = python_blocks((ROOT / "README.md").read_text())
    quick_start, many_datasets = blocks[0], blocks[1]
    assert "n_init=1000" in quick_start
    namespace: dict = {}
    exec(quick_start.replace("n_init=1000", "n_init=16"), namespace)
    assert namespace["res"].params.means.shape == (8, 2)
    x = namespace["X"]
    namespace.update(Xs=np.stack([x, x + 1.0]), key=jax.random.key(0))
    exec(many_datasets, namespace)
    assert namespace["params"].means.shape == (2, 8, 2)
