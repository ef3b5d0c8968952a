# glueline — every target creates/uses the project virtualenv at .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
IAM_SIMULATOR := tests/access/node_modules/.package-lock.json

.PHONY: install run test test-unit up down status plan deploy destroy bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The access test's IAM simulator (Node.js), pinned by tests/access/package-lock.json.
$(IAM_SIMULATOR): tests/access/package-lock.json
	npm ci --prefix tests/access --no-audit --no-fund --silent

install: $(STAMP)  ## create .venv with glueline and its pinned dependencies

run: $(STAMP)  ## run data/samples/ through the whole pipeline on the embedded stack, print the report
	$(BIN)/glueline run $(ARGS)

test: $(STAMP) $(IAM_SIMULATOR)  ## unit + integration tests (the integration tests start their own embedded stack)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP) $(IAM_SIMULATOR)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

up: $(STAMP)  ## start the embedded stack in the background and deploy the pipeline
	$(BIN)/glueline up --detach

down: $(STAMP)
	$(BIN)/glueline down

status: $(STAMP)
	$(BIN)/glueline status

# The AWS account the standard AWS configuration selects, or PROFILE=name (make deploy PROFILE=prod).
AWS_ARGS = $(if $(PROFILE),--profile $(PROFILE)) $(ARGS)

plan: $(STAMP)  ## what deploy would create/update (PROFILE=name; ARGS=--db-url … the first time); writes nothing
	$(BIN)/glueline plan $(AWS_ARGS)

deploy: $(STAMP)  ## create or converge the pipeline's resources (PROFILE=name); asks first on real AWS
	$(BIN)/glueline deploy $(AWS_ARGS)

destroy: $(STAMP)  ## remove what deploy created (PROFILE=name); keeps data unless ARGS=--delete-data
	$(BIN)/glueline destroy $(AWS_ARGS)

bench: $(STAMP)  ## benchmark: 1k/10k/100k/1M rows (ARGS=--with-10m adds 10M) vs the tutorial baseline and the floor
	$(BIN)/python bench/run.py $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src services infra tests bench

clean:  ## stop the embedded stack and delete its state (emulator data, logs, the database)
	-$(BIN)/glueline clean
	rm -rf .glueline
