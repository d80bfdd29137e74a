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
