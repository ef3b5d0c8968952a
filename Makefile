# glueline — every target creates/uses the project virtualenv at .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
IAM_SIMULATOR := tests/access/node_modules/.package-lock.json
AWS_CLI := tests/awscli/.venv/bin/aws
SCANNERS := scanners/.venv/.installed-stamp

.PHONY: install run test test-unit test-compose up down logs console console-screenshot status images-offline plan deploy destroy bench bench-console soak soak-short lint audit docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The access test's IAM simulator (Node.js), pinned by tests/access/package-lock.json.
$(IAM_SIMULATOR): tests/access/package-lock.json
	npm ci --prefix tests/access --no-audit --no-fund --silent

# The AWS CLI the Glue runner's conformance tests drive: a user's own installation, beside ours (it pins
# its own botocore).
$(AWS_CLI): tests/awscli/requirements.txt
	$(PYTHON) -m venv tests/awscli/.venv
	tests/awscli/.venv/bin/python -m pip install --quiet -r tests/awscli/requirements.txt
	touch $(AWS_CLI)

# The security scanners (bandit, checkov, pip-audit), pinned by scanners/requirements.txt, beside ours.
$(SCANNERS): scanners/requirements.txt
	$(PYTHON) -m venv scanners/.venv
	scanners/.venv/bin/python -m pip install --quiet -r scanners/requirements.txt
	touch $(SCANNERS)

install: $(STAMP)  ## create .venv with glueline and its pinned dependencies

run: $(STAMP)  ## run data/samples/ through the whole pipeline on the embedded stack, print the report
	$(BIN)/glueline run $(ARGS)

# make test's pytest workers (pytest-xdist): each that runs an integration test starts a stack of its own;
# a test file's tests stay on one worker. PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 2

test: $(STAMP) $(IAM_SIMULATOR) $(AWS_CLI)  ## unit + integration tests (the integration tests start their own embedded stack)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-unit: $(STAMP) $(IAM_SIMULATOR)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# The compose stack where a Docker engine answers, else the embedded one; STACK=compose|embedded forces one.
STACK ?= auto

up: $(STAMP)  ## start a local stack in the background and deploy the pipeline (STACK=compose|embedded)
	$(BIN)/glueline up --detach --stack $(STACK)

down: $(STAMP)  ## stop it (data stays)
	$(BIN)/glueline down

logs: $(STAMP)  ## follow its logs
	$(BIN)/glueline logs

images-offline: $(STAMP)  ## build stand-ins for the compose stack's images from Debian packages and PyPI only
	$(BIN)/glueline images-offline

test-compose: $(STAMP)  ## the integration tests on the compose stack (starts and deletes its own compose project)
	$(BIN)/python -m pytest tests/integration --glueline-stack compose $(PYTEST_ARGS)

console: $(STAMP)  ## the console: a web page of files, counts and runs of the running stack (ARGS=--profile …)
	$(BIN)/glueline console $(ARGS)

console-screenshot: $(STAMP)  ## regenerate docs/console.png, the README's picture of the console (the browser test takes it)
	GLUELINE_CONSOLE_SCREENSHOT=$(CURDIR)/docs/console.png $(BIN)/python -m pytest tests/integration/test_console.py -q

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

bench-console: $(STAMP)  ## the console's pages with 100k audit items (ARGS=--items N)
	$(BIN)/python bench/console.py $(ARGS)

# The soak (bench/soak): seeded traffic with faults injected at random for DURATION, then the verdict
# "nothing lost, nothing doubled" or the files that differ; figures in bench/results/soak-<stack>-<date>.json.
DURATION ?= 20m
SOAK_STACK = $(if $(filter compose,$(STACK)),compose,embedded)

soak: $(STAMP)  ## traffic + random faults for DURATION (default 20m) on the embedded stack (STACK=compose), then a verdict
	$(BIN)/python -m bench.soak --duration $(DURATION) --stack $(SOAK_STACK) $(ARGS)

# CI's soak is a gate: one fixed seed (SEED=… another), so a red soak is the code's, not the draw's.
# `make soak` draws a seed each time (printed first; SEED=… replays it).
CI_SOAK_SEED = 20261202

soak-short: $(STAMP)  ## CI's soak: 3 minutes, every fault kind once, a fixed seed, figures kept out of bench/results
	$(BIN)/python -m bench.soak --duration 3m --stack $(SOAK_STACK) --short --min-each 1 --files-per-minute 12 --max-rows 30000 --drain 10m --seed $(or $(SEED),$(CI_SOAK_SEED)) $(ARGS)

LINTED := src services infra tests bench

lint: $(STAMP) $(SCANNERS)  ## ruff, mypy on all of src/, the layers' import contracts, bandit, checkov on the template
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo
	scanners/.venv/bin/bandit --recursive src services --severity-level medium --quiet
	mkdir -p build/scan
	$(BIN)/glueline package --db-url postgresql://glueline@db.example.internal:5432/bank --out build/scan/template.json
	scanners/.venv/bin/checkov --file build/scan/template.json --framework cloudformation --quiet --compact --skip-download

audit: $(STAMP) $(SCANNERS)  ## pip-audit on glueline's pinned dependencies (needs PyPI's JSON API or OSV; fails when it cannot audit)
	mkdir -p build/scan
	$(BIN)/python -m pip freeze --exclude-editable > build/scan/requirements.txt
	scanners/.venv/bin/pip-audit --strict --no-deps --disable-pip --requirement build/scan/requirements.txt

docs: $(STAMP)  ## the guide (docs/) with MkDocs into build/docs; --strict: a broken link or anchor fails
	$(BIN)/mkdocs build --strict

clean:  ## stop the embedded stack and delete its state (emulator data, logs, the database)
	-$(BIN)/glueline clean
	rm -rf .glueline
