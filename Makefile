# The commands a contributor needs. `make demo` and `make test` work on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: demo test lint typecheck unit integration bench clean chart chart-values

$(VENV)/.installed: pyproject.toml
	@echo "==> creating $(VENV) and installing triggergate with its dev tools (pip install -e '.[dev]')"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	@touch $@

demo: $(VENV)/.installed
	@echo "==> running the demo: examples/demo.py (gateway on :12000, pipeline endpoint on :12001, a moto S3 server on a free port)"
	$(PY) examples/demo.py

lint: $(VENV)/.installed
	@echo "==> ruff check"
	$(VENV)/bin/ruff check .
	@echo "==> import boundaries (sensors/ is pure; arrows point down)"
	$(VENV)/bin/lint-imports

typecheck: $(VENV)/.installed
	@echo "==> mypy (strict on sensors/)"
	$(VENV)/bin/mypy sensors gateway

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit tests/contract -q

integration: $(VENV)/.installed
	$(PY) -m pytest -m integration -q

test: lint typecheck
	@echo "==> pytest: the whole suite (unit, contract, integration)"
	$(PY) -m pytest

chart: $(VENV)/.installed
	@echo "==> chart: values.yaml / values.schema.json match gateway/settings.py; render, lint, validate (tests/chart)"
	$(PY) -m gateway.settings --check charts/triggergate
	$(PY) -m pytest tests/chart -q

chart-values: $(VENV)/.installed
	@echo "==> regenerating charts/triggergate/values.yaml and values.schema.json from gateway/settings.py"
	$(PY) -m gateway.settings --write charts/triggergate

bench: $(VENV)/.installed
	$(PY) bench/webhook_ingest.py

clean:
	rm -rf $(VENV) .triggergate .pytest_cache .mypy_cache .ruff_cache
