"""Real parts over loopback: moto's server as AWS, the local OpenAI server as the API."""

from __future__ import annotations

import io
import itertools
import logging
from collections.abc import Iterator

import pytest

from local_openai.server import LocalOpenAIServer
from local_stack.aws_endpoint import MotoEndpoint, moto_environment
from local_stack.provision import StackNames, StackResources, StackSettings, provision
from tagger.telemetry import logger
from tests.integration.harness import API_KEY, Harness, Seeder, StackMaker, new_id

_prefixes = itertools.count()


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoEndpoint]:
    with moto_environment() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def openai_server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def api(openai_server: LocalOpenAIServer) -> LocalOpenAIServer:
    openai_server.reset()
    return openai_server


@pytest.fixture
def stack(moto: MotoEndpoint) -> StackResources:
    """Fresh queues, table, bus and observer for each test, so tests never see each other's events."""
    return provision(StackNames.with_prefix(f"t{next(_prefixes)}"), StackSettings(visibility_timeout_seconds=30))


@pytest.fixture
def make_stack(moto: MotoEndpoint) -> StackMaker:
    """Fresh stacks with a chosen visibility timeout and maxReceiveCount (short ones for redelivery tests)."""

    def make(visibility_timeout_seconds: int = 2, max_receive_count: int = 5) -> StackResources:
        settings = StackSettings(
            max_receive_count=max_receive_count, visibility_timeout_seconds=visibility_timeout_seconds
        )
        return provision(StackNames.with_prefix(f"t{next(_prefixes)}"), settings)

    return make


@pytest.fixture
def function_logs() -> Iterator[io.StringIO]:
    """Everything the function logs, formatted by Powertools as on Lambda (JSON with all extra keys)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger._logger.removeHandler(handler)


@pytest.fixture
def harness(stack: StackResources, api: LocalOpenAIServer) -> Harness:
    return Harness(stack, api)


@pytest.fixture
def seed(api: LocalOpenAIServer) -> Seeder:
    def make(metadata: dict[str, str] | None = None) -> str:
        completion_id = new_id()
        api.seed_completion(completion_id, metadata or {})
        return completion_id

    return make
