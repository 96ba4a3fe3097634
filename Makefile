# kgwb — two commands do everything on a fresh machine with Python 3.10+:
#   make run    create .venv, install, run the notebook pipeline on the built-in sample
#   make test   create .venv, install with test extras, run the whole test suite (+ nbval)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PARAMS ?= notebooks/params/sample.yaml
STAMP  := $(VENV)/.kgwb-installed
# Progress bars off and the hub off: tests and CI must never try the network.
TEST_ENV := TQDM_DISABLE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONHASHSEED=0
NBVAL := --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg

.PHONY: install run test test-fast lint notebooks bench clean lab

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall when the dependency list changes.  torch is pinned in pyproject.toml (2.13.0): pip
# takes the CPU wheel the reference machines keep on disk instead of a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[ml,test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/kgwb pipeline --params $(PARAMS)

test: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest tests notebooks $(NBVAL) $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest tests -m "not slow and not shared" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check kgwb tests benchmarks

# Re-execute the committed notebooks and strip volatile metadata before committing them.
notebooks: $(STAMP)
	$(TEST_ENV) $(PY) -m kgwb.notebooks refresh notebooks/[0-9][0-9]_*.ipynb

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lab: $(STAMP)
	$(PY) -m pip install --quiet -e ".[lab]"
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) reports/runs .pytest_cache
