# The two commands of the README: `make run` starts the whole hub, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-requirements
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test lint format bench clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

## Start web (daphne), worker and beat on embedded defaults (SQLite, a private Redis); Ctrl-C stops all.
run: export DEBUG ?= 1
run: $(STAMP)
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demosetup
	@echo ""
	@echo "notifyhub is starting:"
	@echo "  API and streams  http://127.0.0.1:$${NOTIFYHUB_PORT:-8000}/"
	@echo "  admin console    http://127.0.0.1:$${NOTIFYHUB_PORT:-8000}/admin/   (user admin, password above)"
	@echo "  API docs         http://127.0.0.1:$${NOTIFYHUB_PORT:-8000}/api/docs/"
	@echo "  readiness        http://127.0.0.1:$${NOTIFYHUB_PORT:-8000}/readyz"
	@echo ""
	$(BIN)/python -m notifyhub.devredis -- $(BIN)/honcho start

## Run the whole suite: DATABASE_URL / REDIS_URL when set, SQLite and an embedded Redis otherwise.
test: $(STAMP)
	mkdir -p var
	$(BIN)/python -m notifyhub.devredis -- $(BIN)/pytest -n auto $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=1 $(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m notifyhub.devredis -- $(BIN)/python bench/run.py

clean:
	rm -rf var .pytest_cache
