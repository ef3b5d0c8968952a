# glueline — every target creates/uses the project virtualenv at .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test test-unit up down status bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv with glueline and its pinned dependencies

run: $(STAMP)  ## run data/samples/ through the whole pipeline on the embedded stack, print the report
	$(BIN)/glueline run $(ARGS)

test: $(STAMP)  ## unit + integration tests (the integration tests start their own embedded stack)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

up: $(STAMP)  ## start the embedded stack in the background and deploy the pipeline
	$(BIN)/glueline up --detach

down: $(STAMP)
	$(BIN)/glueline down

status: $(STAMP)
	$(BIN)/glueline status

bench: $(STAMP)  ## benchmark: 1k/10k/100k/1M rows (ARGS=--with-10m adds 10M) vs the tutorial baseline and the floor
	$(BIN)/python bench/run.py $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src services infra tests bench

clean:  ## stop the embedded stack and delete its state (emulator data, logs, the database)
	-$(BIN)/glueline clean
	rm -rf .glueline
