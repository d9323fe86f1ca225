# Hotline developer commands. On a machine with only Python 3.11, git and make:
#   make demo   a running demo on SQLite with demo users and reports
#   make demo-totp WHO=analyst   a demo user's current two-factor code
#   make test   the whole test suite (SQLite with no environment; PostgreSQL/Redis if DATABASE_URL/REDIS_URL are set)
#   make lint   ruff and the migrations check
#   make audit  pip-audit (requirements.txt) and bandit (hotline/, reports/); see docs/security.md
#   make clean  remove the virtualenv, caches and the demo database

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_ADDR ?= 127.0.0.1:8000
# Synthetic reports behind the demo's statistics dashboard (seeded once; a few seconds on SQLite).
DEMO_HISTORY ?= 3000
PYTEST_ARGS ?=

# Stamps live inside the venv, so a deleted venv also forgets what was installed in it.
RUNTIME_STAMP := $(VENV)/.hotline-requirements.stamp
DEV_STAMP := $(VENV)/.hotline-requirements-dev.stamp

.DEFAULT_GOAL := help
.PHONY: help demo demo-totp test lint audit clean

help:
	@echo "make demo   run the demo on http://$(DEMO_ADDR)/ (SQLite, no services, demo logins)"
	@echo "make demo-totp WHO=analyst   the current two-factor code of a demo user"
	@echo "make test   run the whole test suite"
	@echo "make lint   ruff check, ruff format --check, makemigrations --check"
	@echo "make audit  pip-audit and bandit, findings explained in docs/security.md"
	@echo "make clean  remove $(VENV), caches and the demo database in var/"

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 not found: install python3.11 or pass PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "Could not create $(VENV). On Debian/Ubuntu: apt-get install python3.11-venv" >&2; exit 1; }

$(RUNTIME_STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install -r requirements.txt
	touch $@

# requirements-dev.txt includes requirements.txt, so it satisfies the runtime stamp too.
$(DEV_STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install -r requirements-dev.txt
	touch $(RUNTIME_STAMP) $@

# The demo never uses the DATABASE_URL/REDIS_URL of the calling shell: it must not seed demo
# logins with known passwords into a real database. Its image site (generated pictures, loopback
# only) is fetchable because the demo's environment alone names it in HOTLINE_FETCH_ALLOW_HOSTS.
DEMO_SITE_PORT ?= 8765
DEMO_SITE := 127.0.0.1:$(DEMO_SITE_PORT)
DEMO_ENV := env -u DATABASE_URL -u REDIS_URL DEBUG=1 HOTLINE_FETCH_ALLOW_HOSTS=$(DEMO_SITE)

# The synthetic site runs in the background of one shell (one recipe line) whose EXIT trap stops it,
# however the demo ends: Ctrl-C, a failed step, or the server exiting. seed_demo waits for it to
# come up, and the demo's reports are fetched, hashed and matched in-process while they are seeded.
demo: $(RUNTIME_STAMP)
	@case "$(DEMO_ADDR)" in 127.*:*|localhost:*|"[::1]":*) ;; *) \
		echo "DEMO_ADDR=$(DEMO_ADDR) refused: the demo has published passwords and listens on loopback only" \
			"(e.g. DEMO_ADDR=127.0.0.1:8001)." >&2; exit 2;; esac
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput
	@$(DEMO_ENV) $(BIN)/python manage.py serve_synthetic_site --host 127.0.0.1 --port $(DEMO_SITE_PORT) & site=$$!; \
	trap 'kill $$site 2>/dev/null; wait $$site 2>/dev/null' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM HUP; \
	$(DEMO_ENV) $(BIN)/python manage.py seed_demo --site $(DEMO_SITE) --wait-for-site 30 --history $(DEMO_HISTORY) && \
	echo && \
	echo "Hotline demo: http://$(DEMO_ADDR)/  (report form: http://$(DEMO_ADDR)/report/)" && \
	echo "Staff sign-in: http://$(DEMO_ADDR)/account/login/  as admin (then /admin/: Cases, Contents, Matches)." && \
	echo "Two-factor code: \`make demo-totp WHO=admin\` in another terminal. Stop with Ctrl-C." && \
	echo "Try the form with http://$(DEMO_SITE)/img/7.jpg (new) or http://$(DEMO_SITE)/img/3/cropped.jpg (near-duplicate)." && \
	echo && \
	$(DEMO_ENV) $(BIN)/python manage.py runserver $(DEMO_ADDR)

# The current two-factor code of a demo user (WHO=admin, analyst, senior or coordinator), from the
# demo's database.
WHO ?= admin
demo-totp: $(RUNTIME_STAMP)
	@$(DEMO_ENV) $(BIN)/python manage.py demo_totp $(WHO)

test: $(DEV_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run

# Prints "audit-figures" JSON lines; fails on a known vulnerability or an unexplained bandit finding.
audit: $(DEV_STAMP)
	$(BIN)/python .ci/audit.py

clean:
	@# Only remove what is really a virtualenv: VENV may have been pointed somewhere else.
	@if [ -f "$(VENV)/pyvenv.cfg" ]; then echo "rm -rf $(VENV)"; rm -rf "$(VENV)"; fi
	rm -rf .pytest_cache .ruff_cache .hypothesis staticfiles var
	find . \( -path ./.git -o -path ./.venv \) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
