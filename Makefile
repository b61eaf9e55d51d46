# completion-tagger: every target sets up what it needs (virtual environments with pinned dependencies).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
PORT ?= 8010
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test lint typecheck validate unit integration local-openai bench redrive clean

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# SAM CLI pins its own boto3/pydantic, so it lives in a venv of its own.
$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-sam.txt
	touch $@

## run: the main job end to end on the embedded local stack (moto server + local OpenAI server)
run: $(VENV)/.installed
	$(PY) -m local_stack run

## test: ruff, mypy, sam validate --lint, then the whole pytest suite
test: lint typecheck validate
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy functions local_openai local_stack

validate: $(SAM_VENV)/.installed
	env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_REGION AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 \
		$(SAM) validate --lint --template template.yaml

## local-openai: the local OpenAI-compatible server alone, in the foreground (PORT=8010)
local-openai: $(VENV)/.installed
	$(PY) -m local_openai --host 127.0.0.1 --port $(PORT)

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis
