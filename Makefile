# Every target creates the virtual environment on first use, so a fresh machine
# needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench schema clean mutation

# The first install takes about a minute; pip's progress shows instead of a silent wait.
$(STAMP): pyproject.toml
	@echo "Installing PanelQL and its test tools into $(VENV) (first run only, about a minute)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/panelql demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check panelql panelql_sim tests bench tools
	$(BIN)/mypy panelql panelql_sim
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench

# Mutation testing of scopes, authorization, idempotency, the error table and status mapping
# (see [tool.mutmut] in pyproject.toml). Not part of `make test`: it takes minutes.
mutation: $(STAMP)
	$(BIN)/mutmut run --max-children 2; status=$$?; \
	  $(BIN)/python tools/mutation_report.py; exit $$status

schema: $(STAMP)
	$(BIN)/panelql schema export

clean:
	rm -rf $(VENV) .panelql .pytest_cache .mypy_cache .ruff_cache mutants
