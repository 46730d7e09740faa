# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
OUT    ?= out/demo

.PHONY: demo test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# PYTHONWARNINGS=ignore: setuptools prints an informational BuildBackendWarning about
# editable installs on every install, which is noise, not a problem of the package.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

# An editable install leaves the package's own modules uncompiled, and with
# PYTHONDONTWRITEBYTECODE set every run would compile them again (~0.3 s of each
# run's start): compileall writes the bytecode of the changed ones.
COMPILE := $(BIN)/python -m compileall -q planner > /dev/null

demo: $(VENV)/.installed
	$(COMPILE)
	$(BIN)/planner demo --out $(OUT)

test: $(VENV)/.installed-test
	$(COMPILE)
	$(BIN)/python -m pytest

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[test,bench]' || \
		PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $(VENV)/.installed-test $@

bench: $(VENV)/.installed-bench
	$(COMPILE)
	$(BIN)/python -m benchmarks

lint: $(VENV)/.installed-test
	$(BIN)/ruff check planner tests benchmarks

clean:
	rm -rf out .pytest_cache
