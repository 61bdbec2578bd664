# Every target works on a fresh machine with only python3: .venv is created and the project installed on demand.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test bench install clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q -e '.[test,plot]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/emjax demo

test: $(STAMP)
	$(PY) -m pytest tests

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m pip install -q torch==2.13.0 || echo "torch CPU build not available: pomegranate will be reported as failed"
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache emjax-demo.png
