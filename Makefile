# completion-tagger: every target sets up what it needs (virtual environments with pinned dependencies).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SCAN_VENV := .venv-scan
PORT ?= 8010
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test lint typecheck validate scan schemas unit integration local-openai bench redrive clean

# The pinned dependencies, then the project itself (editable, no dependencies): the `completion-tagger` program.
$(VENV)/.installed: requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --editable .
	touch $@

# SAM CLI pins its own boto3/pydantic, so it lives in a venv of its own.
$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	touch $@

# checkov pins its own boto3, networkx and packaging, which clash with both other environments.
$(SCAN_VENV)/.installed: requirements-scan.txt
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-scan.txt
	touch $@

## run: the main job end to end on the embedded local stack (moto server + local OpenAI server)
run: $(VENV)/.installed
	$(PY) -m local_stack run

## test: ruff, mypy, sam validate --lint, the IaC scan, then the whole pytest suite
test: lint typecheck validate scan
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy functions completion_tagger local_openai local_stack bench event_schemas

validate: $(SAM_VENV)/.installed
	env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_REGION AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 \
		$(SAM) validate --lint --template template.yaml

## scan: checkov and cfn-lint's serverless rules on template.yaml; a finding either gets fixed or an inline
##   skip with its reason (README, Security)
scan: $(SCAN_VENV)/.installed
	$(SCAN_VENV)/bin/checkov --file template.yaml --framework cloudformation --skip-download --compact --quiet
	$(SCAN_VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml

## schemas: regenerate schemas/ and the template's schema registry from the function's models
schemas: $(VENV)/.installed
	PYTHONPATH=functions $(PY) -m event_schemas

## local-openai: the local OpenAI-compatible server alone, in the foreground (PORT=8010)
local-openai: $(VENV)/.installed
	$(PY) -m local_openai --host 127.0.0.1 --port $(PORT)

## bench: ours vs the straightforward baseline on the local stack (a few minutes); writes bench/results/
bench: $(VENV)/.installed
	$(PY) -m bench

## redrive: move dead-lettered tag requests back to the queue with SQS's message-move task, printing progress
##   STACK=completion-tagger-dev (the stack whose queues to use), REGION= (default: your AWS config),
##   REDRIVE_ARGS= (more options, e.g. --dry-run, --max-per-second 50; see python -m local_stack redrive --help)
STACK ?= completion-tagger-dev
REGION ?=
REDRIVE_ARGS ?=
redrive: $(VENV)/.installed
	$(PY) -m local_stack redrive --stack-name $(STACK) $(if $(REGION),--region $(REGION)) $(REDRIVE_ARGS)

clean:
	rm -rf $(VENV) $(SAM_VENV) $(SCAN_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis
