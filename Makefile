# Every target works on a fresh machine with only python3: .venv is created and the project installed on demand.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: lint run test test-fast test-slow verify bench install doctest docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q -e '.[test,plot]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/emjax demo

# The suite in three lanes, all run by CI (.ci/run): `make test`, the fast lane (every test not
# marked slow or verify) on two pytest-xdist workers; `make test-slow`, the tests marked slow
# (notebooks, tests that start Python processes, large shapes, checks that compile many programs),
# each test file on one worker; `make verify`, the differential grid. `make test-fast` is the
# fast lane stopping at the first failure (the inner loop).
FAST_LANE := -m "not slow and not verify"
# The fast lane compiles with XLA's optimisations mostly off and its older CPU emitters, in about a
# third of the time; the few tests marked `optimized` compile as users do, so `make test` runs them
# in a second process (tests/conftest.py). The slow lane and the grid compile as users do.
QUICK := EMJAX_TEST_QUICK_COMPILE=1
OPTIMIZED := -m "optimized and not slow and not verify"

test: $(STAMP)
	$(QUICK) $(PY) -m pytest tests $(FAST_LANE) -n 2
	$(PY) -m pytest tests $(OPTIMIZED) -n 2

test-fast: $(STAMP)
	$(QUICK) $(PY) -m pytest tests $(FAST_LANE) -n 2 -x

test-slow: $(STAMP)
	$(PY) -m pytest tests -m "slow and not verify" -n 2 --dist loadfile

# ruff (rules in pyproject.toml) and the layer rules of docs/guide/architecture.md (tests/test_layers.py:
# every import points down a layer, no private names across modules).
lint: $(STAMP)
	$(VENV)/bin/ruff check emjax tests benchmarks
	$(PY) -m pytest tests/test_layers.py -q -p no:cacheprovider

# The differential harness's full grid (tests/differential, marker "verify"): every model
# configuration on every execution path over drawn shapes, against float64 references. Nearly all
# of its time is XLA compilation (one program per model, shape and path), so it runs on two
# pytest-xdist workers. CI runs it (.ci/run).
verify: $(STAMP)
	$(PY) -m pytest tests -m verify -n 2 --dist worksteal

# torch first (2.13.0: the CPU build where one is on disk), so pomegranate does not pull a CUDA
# torch; a peer that still fails to install is reported as failed by benchmarks/run.py.
# BENCH_ARGS, e.g. "--scale small --workloads W1,W5", is passed to run.py (default: everything).
# A complete run replaces benchmarks/results/cpu.jsonl and cpu.md (the previous run moves to
# results/archive/); any other run goes to results/archive/ under its dated name (benchmarks/README.md).
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) -m pip install -q torch==2.13.0 || echo "torch 2.13.0 not available: pomegranate may be reported as failed"
	$(PY) -m pip install -q -e '.[bench]' || $(PY) -m pip install -q 'scikit-learn>=1.3' 'gmmx>=0.7' 'psutil>=5.9'
	$(PY) benchmarks/run.py $(BENCH_ARGS)

# The docstring examples of emjax/ (every public name has one), run as doctests. __main__.py is
# left out: importing it runs the command line.
DOCS_STAMP := $(VENV)/.docs-installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[docs]'
	rm -f $(VENV)/.docs-installed-* && touch $(DOCS_STAMP)

doctest: $(STAMP)
	$(PY) -m pytest --doctest-modules emjax --ignore=emjax/__main__.py -p no:cacheprovider

# The documentation site (Sphinx + myst-nb: docs/guide, the notebooks as stored, never executed
# here, and the API reference from the docstrings) into docs/_build/html; any warning fails it.
docs: $(DOCS_STAMP) doctest
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache emjax-demo.png docs/_build docs/api/generated docs/notebooks
