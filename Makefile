# The two commands of the README: `make run` starts the whole hub, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-requirements
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test lint format bench clean

# Development installs everything (requirements-dev.txt includes requirements.txt); a production
# machine installs requirements.txt alone (docs/deploy.md).
$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

## Start web (daphne), worker and beat on embedded defaults (SQLite, a private Redis); Ctrl-C stops all.
## Procfile.dev lists them, each under notifyhub.respawn, which starts a process that exits again
## (honcho alone stops every process when one exits); the Procfile is production's (docs/deploy.md). The marker file makes
## DEBUG the default for every shell in this checkout (notifyhub/settings.py), so the README's
## manage.py commands work in a second shell too. Static files come from the apps (DEBUG).
run: export DEBUG ?= 1
# The README's first webhook goes to a receiver on this machine; the SSRF guard refuses loopback
# everywhere else (docs/security.md).
run: export NOTIFYHUB_WEBHOOK_ALLOWED_NETWORKS ?= 127.0.0.1/32
run: $(STAMP)
	mkdir -p var
	touch var/development-checkout
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demosetup
	@echo ""
	@echo "notifyhub is starting:"
	@echo "  start page       http://127.0.0.1:$${NOTIFYHUB_PORT:-8000}/"
	@echo "  admin console    http://127.0.0.1:$${NOTIFYHUB_PORT:-8000}/admin/   (user admin, password above)"
	@echo "  API docs         http://127.0.0.1:$${NOTIFYHUB_PORT:-8000}/api/docs/"
	@echo "  readiness        http://127.0.0.1:$${NOTIFYHUB_PORT:-8000}/readyz"
	@echo ""
	$(BIN)/python -m notifyhub.devredis -- $(BIN)/honcho --procfile Procfile.dev start

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
