"""Every notebook in notebooks/ runs top to bottom in a fresh kernel of this test's interpreter."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import AsyncKernelManager  # noqa: E402
from nbclient.exceptions import CellExecutionError  # noqa: E402
from traitlets import default  # noqa: E402

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
KERNEL_NAME = "python3"
CELL_TIMEOUT_S = 300
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    """A kernelspec directory whose ``python3`` kernel is this interpreter (``sys.executable``).

    The default ``python3`` kernelspec may belong to another Python (a user-wide Jupyter, a
    system install); writing our own keeps the notebook on the venv under test.
    """
    kernels = tmp_path_factory.mktemp("kernels")
    spec = kernels / KERNEL_NAME
    spec.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python 3 ({sys.executable})",
        "language": "python",
    }))
    return str(kernels)


def kernel_manager_class(kernel_dir: str):
    """An ``AsyncKernelManager`` that looks up kernelspecs in ``kernel_dir`` only."""

    class TestKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _kernel_spec_manager_default(self):
            return KernelSpecManager(kernel_dirs=[kernel_dir], ensure_native_kernel=False)

    return TestKernelManager


def interpreter_check_cell():
    """A first cell that fails unless the kernel runs this interpreter and environment."""
    expected = (sys.executable, sys.prefix)
    return nbformat.v4.new_code_cell(
        "import sys\n"
        f"assert (sys.executable, sys.prefix) == {expected!r}, (\n"
        f"    'kernel runs', (sys.executable, sys.prefix), 'but the tests run', {expected!r})"
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, kernel_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")  # the kernel inherits the environment
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, interpreter_check_cell())
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name=KERNEL_NAME,
        kernel_manager_class=kernel_manager_class(kernel_dir),
        resources={"metadata": {"path": str(tmp_path)}},  # working directory of the kernel
    )
    try:
        client.execute()
        return
    except CellExecutionError as err:
        message = ANSI_ESCAPE.sub("", str(err))
    failed = next((i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
                   and any(o.get("output_type") == "error" for o in cell.get("outputs", []))), None)
    if failed is None:
        where = "a cell"
    elif failed == 0:
        where = "the interpreter check"
    else:
        where = f"cell {failed - 1} (0-based, markdown cells included)"
    pytest.fail(f"{path.name}: {where} raised:\n{message}", pytrace=False)


def test_notebooks_exist():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_committed_without_outputs(path):
    """Notebooks are stored without outputs so the repository stays small."""
    nb = nbformat.read(path, as_version=4)
    with_outputs = [i for i, cell in enumerate(nb.cells)
                    if cell.cell_type == "code" and (cell.outputs or cell.execution_count)]
    assert not with_outputs, (f"{path.name}: cells {with_outputs} have outputs; clear them "
                              "(jupyter nbconvert --clear-output --inplace) before committing.")
