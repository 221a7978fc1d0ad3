# One entry point for people and CI.  `make test` and `make book` set everything up on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The torch build used on the project's machines; set TORCH_PINS= to keep whatever torch you have.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup test lint book data bench lab clean browser-deps regress

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_PINS) -e ".[book,dev]"
	touch $@

# Every test, the slow ones too (a plain `pytest` deselects them: see addopts in pyproject.toml).
test: lint browser-deps
	$(PY) -m pytest -q -m "slow or not slow"

# Style and the bugs a linter finds (ruff, configured in pyproject.toml), on the package, tests, benchmarks and chapters.
lint: $(STAMP)
	$(VENV)/bin/ruff check .

# The book: every chapter executed at cpu scale into build/, then jupyter-book into _build/html.
book: $(STAMP)
	$(PY) -m ogc_lab.book execute --scale cpu
	$(PY) -m ogc_lab.book build

# CIFAR-10 and CIFAR-10N's human labels for chapter 6's cpu-scale code-path check, downloaded into data/ from their
# official addresses and checked (`ogc-lab fetch`: CIFAR-10's md5, CIFAR-10N's labels aligned with CIFAR-10's).
# Needs the network; the Pages workflow runs it before `make book`.
DATA ?= cifar10 cifar10n
data: $(STAMP)
	$(PY) -m ogc_lab fetch $(DATA) --data-root data

# JupyterLab on the chapter sources, in the project's venv (ogc_lab importable).
lab: $(STAMP)
	$(PY) -m pip install --quiet -e ".[lab]"
	$(VENV)/bin/jupyter lab notebooks/

# Headless Chromium and its driver for tests/test_browser.py (Debian packages); quick when present.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		echo "chromium and chromedriver are installed"; \
	else \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver; \
	fi

# The chapters at cpu scale, checked by the same per-chapter assertions as the smoke-scale tests.
regress: $(STAMP)
	OGC_BOOK_SCALE=cpu $(PY) -m pytest tests/test_notebooks.py -q -m "slow or not slow"

bench: $(STAMP)
	for b in refit step pipeline epoch ddp; do $(PY) benchmarks/bench_$$b.py || exit 1; done

clean:
	rm -rf _build build
