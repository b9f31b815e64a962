# Chanjiao: `make run` serves the platform, `make test` sets up and runs the whole suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip --disable-pip-version-check
# torch==2.13.0 is the CPU build on local disk; the constraint stops a CUDA build being pulled in.
PIP_INSTALL := $(PIP) install -c constraints.txt
PYTHON ?= python3.11

# One OpenMP thread per process: the encoder hangs in forked workers otherwise, and crawls
# under CPU contention. Models load from installed packages only.
export OMP_NUM_THREADS ?= 1
export OMP_WAIT_POLICY ?= passive
export MKL_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM ?= false
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

CATALOGUES := $(wildcard platform/chanjiao/translations/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGUES:.po=.mo)

.PHONY: run test install install-test bench bench-live eval lint translations clean

$(PY):
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -U pip

$(VENV)/.installed: pyproject.toml constraints.txt | $(PY)
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt | $(PY)
	$(PIP_INSTALL) -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

%.mo: %.po | $(PY)
	$(VENV)/bin/pybabel compile -f -i $< -o $@

translations: $(COMPILED)

run: install translations
	$(VENV)/bin/flask --app wsgi init-instance
	$(VENV)/bin/gunicorn -c gunicorn.conf.py wsgi:app

# The Debian packages and local servers the suite uses (installed and started when missing),
# then the linter, then the tests.
test: install-test translations
	scripts/test_prerequisites.sh
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install-test
	$(PY) bench/matching_bench.py

# The live catalogue under gunicorn (2 workers, a job worker) on a fresh database, e.g.
# make bench-live BENCH_ARGS="--programmes 10000 --database-url postgresql://root@127.0.0.1:5432/test"
bench-live: install-test translations
	$(PY) bench/live_catalogue_bench.py $(BENCH_ARGS)

# Matching quality on the development split (shared/ beside this repository; never copied in).
VOCMATCH ?= ../shared/data/vocmatch
eval: install-test
	$(PY) -m matching.evaluate $(VOCMATCH) --cv 5 --abstention

lint: install-test
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
