# Two commands a newcomer needs: `make demo` and `make test`. Each creates the virtual
# environment on first use (python3 -m venv .venv; pip install -e ".[dev]").
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# bytecode for the checkout, as pip writes it for an installed wheel: an editable
	# install has none, and a shell with PYTHONDONTWRITEBYTECODE=1 would compile the
	# grader's ~100 modules at every start (~0.1 s of each `nngrader check`)
	$(BIN)/python -m compileall -q grader
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nngrader grade submissions --out out/demo
	@echo
	@cat out/demo/summary.csv
	@echo
	@echo "Reports: out/demo/<id>/feedback.html (and .md); class dashboard: out/demo/index.html"

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/throughput.py

clean:
	rm -rf out build dist *.egg-info .pytest_cache
