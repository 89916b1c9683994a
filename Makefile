# Set-up is part of every target: a fresh machine needs only Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PG_URL := postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: install run test lint format bench stress clean translations

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# System packages: the CJK font the certificates embed, and pdftoppm and Chromium, which only the tests use.
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
CHROMIUM := /usr/bin/chromium
SYSTEM_PACKAGES := fonts-wqy-microhei poppler-utils chromium

.PHONY: system-deps
install: system-deps
system-deps:
	@if [ -f $(CJK_FONT) ] && command -v pdftoppm >/dev/null && [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(SYSTEM_PACKAGES); \
	else \
		echo "Missing system packages: install them as root with"; \
		echo "  apt-get install -y --no-install-recommends $(SYSTEM_PACKAGES)"; \
	fi

run: install
	$(BIN)/neutralize db upgrade
	$(BIN)/neutralize demo
	$(BIN)/neutralize serve

lint: install
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format src tests bench migrations
	$(BIN)/ruff check --fix src tests bench migrations

# PostgreSQL joins the suite whenever a server answers; under CI=true its absence fails the run.
test: install lint
	@if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then \
		echo "PostgreSQL answers: the database tests run on SQLite and PostgreSQL"; \
		NEUTRALIZE_TEST_POSTGRES_URL=$${NEUTRALIZE_TEST_POSTGRES_URL:-$(PG_URL)} $(BIN)/pytest -n 2; \
	else \
		echo "PostgreSQL does not answer at 127.0.0.1:5432: its suite is skipped"; \
		$(BIN)/pytest -n 2; \
	fi

bench: install
	$(BIN)/python bench/footprint.py
	$(BIN)/python bench/registry.py
	$(BIN)/python bench/orders.py
	$(BIN)/python bench/leaderboard.py
	$(BIN)/python bench/accounts.py

# The pages' words: extract every marked string (templates and web modules, see babel.cfg) and
# merge it into the four catalogues; then translate what is new or fuzzy (docs/i18n.md).
LOCALES := src/neutralize/web/locales
translations: install
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output --project=Neutralize --version=0.1.0 \
		--copyright-holder="Neutralize contributors" -o $(LOCALES)/messages.pot .
	$(BIN)/pybabel update -i $(LOCALES)/messages.pot -d $(LOCALES) --ignore-obsolete
	rm $(LOCALES)/messages.pot

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis

# The long versions of the property tests (thousands of examples each), 200 kill -9 trials of the
# registry, and the registry races with more workers and commands (PostgreSQL when it answers).
stress: install
	@if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then \
		export NEUTRALIZE_TEST_POSTGRES_URL=$${NEUTRALIZE_TEST_POSTGRES_URL:-$(PG_URL)}; \
	fi; \
	HYPOTHESIS_PROFILE=stress $(BIN)/pytest -n 2 tests/unit tests/stateful && \
	CRASH_TRIALS=200 $(BIN)/pytest tests/crash && \
	CONCURRENCY_WORKERS=80 CONCURRENCY_SQLITE_WORKERS=32 CONCURRENCY_OPS=20 $(BIN)/pytest tests/concurrency
