# Both targets create (or reuse) .venv and install the pinned dependencies.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kpr-installed

export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: test lint demo bench clean check-ranges

$(STAMP): pyproject.toml requirements/lock.txt requirements/no-deps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/lock.txt
	$(PY) -m pip install --quiet --no-deps -r requirements/no-deps.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

demo: $(STAMP)
	$(PY) -m kpr demo

bench: $(STAMP)
	$(PY) benchmarks/inference.py

# The lowest and the newest dependency versions pyproject.toml allows, each in its own venv under
# build/check-ranges/ (reused while unchanged), running the suite's fast subset (README
# "Supported versions").
check-ranges:
	$(PYTHON) .ci/check_ranges.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
