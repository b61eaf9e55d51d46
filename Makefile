# completion-tagger: every target sets up what it needs (virtual environments with pinned dependencies).
# The Lambda runtime's Python (3.13) where the machine has one, pyenv's included, else the newest >= 3.11:
# tools/artifact/pythons.py prints both. RUNTIME_PYTHON is `-` on a machine without the runtime's Python.
PYTHONS := $(shell python3 tools/artifact/pythons.py)
PYTHON ?= $(word 1,$(PYTHONS))
RUNTIME_PYTHON ?= $(or $(word 2,$(PYTHONS)),-)
export RUNTIME_PYTHON
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print(sys.version.split()[0])' 2>/dev/null)
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SCAN_VENV := .venv-scan
PORT ?= 8010
export PYTHONDONTWRITEBYTECODE := 1
.DEFAULT_GOAL := help

.PHONY: help local-stack run test unit integration infrastructure lint typecheck complexity validate scan schemas local-openai local-services
.PHONY: build build-host sam-local-setup sam-local-arm64
.PHONY: bench redrive clean

## help: this list, every target with what it does (the default goal)
help:
	@echo "usage: make TARGET [NAME=value ...]"
	@awk '/^## [a-z0-9-]+:/ { sub(/^## /, ""); name = $$0; sub(/:.*/, "", name); sub(/^[^:]+: */, ""); \
			printf "  %-17s %s\n", name, $$0; next } \
		/^##   / { sub(/^## +/, ""); printf "  %-17s   %s\n", "", $$0 }' $(firstword $(MAKEFILE_LIST))

# The stamp names the interpreter's version, so choosing another Python rebuilds the venv from scratch.
$(VENV)/.python-$(PYTHON_VERSION):
	@test -n "$(PYTHON_VERSION)" || { echo "no usable Python (set PYTHON=...)" >&2; exit 1; }
	@echo "make: .venv on Python $(PYTHON_VERSION) ($(PYTHON))"
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	touch $@

# The pinned dependencies, then the project itself (editable, no dependencies): the `completion-tagger` program.
$(VENV)/.installed: requirements-dev.txt pyproject.toml $(VENV)/.python-$(PYTHON_VERSION)
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

## local-stack: the local stack kept up (moto :5050, local OpenAI :8050, containers polling the queue) until
##   Ctrl-C; it prints how to point `completion-tagger send --wait` at it. LOCAL_STACK_ARGS: e.g. --concurrency 3
local-stack: $(VENV)/.installed
	$(PY) -m local_stack up $(LOCAL_STACK_ARGS)

## run: the main job end to end on the embedded local stack (moto server + local OpenAI server)
run: $(VENV)/.installed
	$(PY) -m local_stack run

## test: ruff, mypy, the complexity gate, sam validate --lint, the IaC scan, then the whole pytest suite (unit, integration and
##   infrastructure), ending with the branch coverage of the function's code (functions/tagger, settings in
##   pyproject.toml). It counts the code the tests run in pytest's own process: the Lambda-like containers
##   and the built artifact run the function in processes of their own, which it does not see.
test: lint typecheck complexity validate scan
	@echo "make test: Python $$($(PY) -c 'import sys; print(sys.version.split()[0])') ($(PYTHON)); runtime's Python: $(RUNTIME_PYTHON)"
	$(PY) -m pytest --cov

## unit: tests/unit alone: no servers, no subprocesses, a few seconds
unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

## integration: tests/integration: moto's server, the local OpenAI server, Lambda-like containers and the built
##   artifact (`make build-host`); minutes. The template's checks are separate: `make infrastructure`
integration: $(VENV)/.installed
	$(PY) -m pytest tests/integration

## infrastructure: tests/infrastructure: template.yaml, samconfig.toml, the schemas and the layer's real build
infrastructure: $(VENV)/.installed
	$(PY) -m pytest tests/infrastructure

## lint: ruff's checks and its formatter (check only) over the whole tree
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## typecheck: mypy (strict) over the function, the program, the tools and the tests
typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy functions completion_tagger tools tests

## complexity: radon's cyclomatic complexity of the product's code (functions/, completion_tagger/): no function
##   above 10 beyond those tools/complexity-baseline.json lists, and those no more complex than it says
complexity: $(VENV)/.installed
	$(PY) -m complexity_gate

## validate: `sam validate --lint` on template.yaml with the pinned SAM CLI
validate: $(SAM_VENV)/.installed
	env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_REGION AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 \
		$(SAM) validate --lint --template template.yaml

## scan: checkov and cfn-lint's serverless rules on template.yaml; a finding either gets fixed or an inline
##   skip with its reason (docs/deploying.md, "Security")
scan: $(SCAN_VENV)/.installed
	$(SCAN_VENV)/bin/checkov --file template.yaml --framework cloudformation --skip-download --compact --quiet
	$(SCAN_VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml

## schemas: regenerate schemas/ and the template's schema registry from the function's models
schemas: $(VENV)/.installed
	PYTHONPATH=functions:tools $(PY) -m event_schemas

# `sam build` without a container: both code directories build with their own makefile, compiling bytecode
# with the runtime's Python where the machine has it (see functions/Makefile, layers/dependencies/Makefile).
SAM_BUILD = env SAM_CLI_TELEMETRY=0 $(if $(filter-out -,$(RUNTIME_PYTHON)),COMPILER=$(RUNTIME_PYTHON)) \
	$(SAM) build --template template.yaml
HOST_BUILD_DIR ?= .aws-sam/host

## build: `sam build` with the pinned SAM CLI: the function and its layer for python3.13 on arm64 (.aws-sam/build)
build: $(SAM_VENV)/.installed
	$(SAM_BUILD)

## build-host: the same build with wheels for this machine's platform, to run it here (HOST_BUILD_DIR=.aws-sam/host)
build-host: $(SAM_VENV)/.installed
	TARGET_PLATFORM=manylinux2014_$$(uname -m) $(SAM_BUILD) \
		--build-dir $(HOST_BUILD_DIR)/build --cache-dir $(HOST_BUILD_DIR)/cache

# `sam local` on a machine that cannot pull AWS's base image (tools/sam-local/README.md). The stand-in is
# built for the template's arm64 and, on another host, for the host's architecture too (what the tests use).
SAM_LOCAL_IMAGE ?= completion-tagger/lambda-python3.13
HOST_LAMBDA_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
SAM_LOCAL_ARCHS ?= $(sort arm64 $(HOST_LAMBDA_ARCH))
DEBIAN_MIRROR ?= http://deb.debian.org/debian
export DEBIAN_MIRROR

## sam-local-setup: prepare this Debian machine for `sam local` (as root): Docker Engine (started), qemu's
##   arm64 emulation where the host is not arm64, and the stand-in base image SAM_LOCAL_IMAGE:<arch> for
##   SAM_LOCAL_ARCHS, built offline with mmdebstrap from DEBIAN_MIRROR. An image already there is kept
##   (REBUILD=1 builds it again)
sam-local-setup: $(VENV)/.installed $(SAM_VENV)/.installed
	sh tools/sam-local/setup-docker.sh
	@for arch in $(SAM_LOCAL_ARCHS); do \
		if [ -z "$(REBUILD)" ] && docker image inspect $(SAM_LOCAL_IMAGE):$$arch >/dev/null 2>&1; then \
			echo "make: $(SAM_LOCAL_IMAGE):$$arch is there (REBUILD=1 builds it again)"; \
		else \
			PIP="$(PY) -m pip" sh tools/sam-local/build-image.sh $$arch $(SAM_LOCAL_IMAGE):$$arch \
				.aws-sam/stand-in-$$arch || exit 1; \
		fi; \
	done

## sam-local-arm64: tests/integration/tagger/test_sam_local.py on the template's arm64 build, as deployed (`make
##   test` runs it on the host's architecture); under emulation on x86_64, several minutes
sam-local-arm64: $(VENV)/.installed $(SAM_VENV)/.installed
	SAM_LOCAL_ARCH=arm64 SAM_LOCAL_IMAGE=$(SAM_LOCAL_IMAGE) $(PY) -m pytest tests/integration/tagger/test_sam_local.py

## local-openai: the local OpenAI-compatible server alone, in the foreground (PORT=8010)
local-openai: $(VENV)/.installed
	$(PY) -m local_openai --host 127.0.0.1 --port $(PORT)

## local-services: moto (port 5000) and the local OpenAI server (8010) on all interfaces, with what
##   events/env.json names, for `sam local invoke`; foreground, Ctrl-C stops it
local-services: $(VENV)/.installed
	$(PY) -m local_stack services

## bench: ours vs the straightforward baseline on the local stack (a few minutes), then DynamoDB units per record; writes tools/bench/results/
bench: $(VENV)/.installed
	$(PY) -m bench
	$(PY) -m bench.record_units

## redrive: move dead-lettered tag requests back to the queue with SQS's message-move task, printing progress
##   STACK=completion-tagger-dev (the stack whose queues to use), REGION= (default: your AWS config),
##   REDRIVE_ARGS= (more options, e.g. --dry-run, --max-per-second 50; see .venv/bin/completion-tagger redrive --help)
STACK ?= completion-tagger-dev
REGION ?=
REDRIVE_ARGS ?=
redrive: $(VENV)/.installed
	$(VENV)/bin/completion-tagger redrive --stack-name $(STACK) $(if $(REGION),--region $(REGION)) $(REDRIVE_ARGS)

## clean: remove the virtual environments, build output and every tool's cache
clean:
	rm -rf $(VENV) $(SAM_VENV) $(SCAN_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage .coverage.*
