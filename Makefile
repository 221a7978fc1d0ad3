# One entry point for people and CI.  `make test` and `make book` set everything up on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The torch build used on the project's machines; set TORCH_PINS= to keep whatever torch you have.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup test book bench lab clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_PINS) -e ".[book,dev]"
	touch $@

test: $(STAMP)
	$(PY) -m pytest -q

book: $(STAMP)
	$(PY) -m ogc_lab.demo

bench: $(STAMP)
	$(PY) benchmarks/bench_refit.py

clean:
	rm -rf _build build
