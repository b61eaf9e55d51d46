"""The local OpenAI server against OpenAI's own OpenAPI description of the stored completion operations.

schemathesis generates requests from the description (tests/reference/) and checks every answer:
status codes, response schemas, content type, 405 for methods a path does not serve, rejection of
invalid input and acceptance of valid input. Runs are derandomized, so a failure reproduces.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml  # type: ignore[import-untyped]

from local_openai import LocalOpenAIServer

pytestmark = pytest.mark.integration

SPEC = Path(__file__).resolve().parents[3] / "reference" / "openai-stored-completions.openapi.yaml"
KEY = "sk-conformance-0123456789"
UNREACHABLE = "http://127.0.0.1:9/v1"  # the discard port: nothing answers there
COMPLETION_ID = "chatcmpl-conformance"
SEED = {
    "id": COMPLETION_ID,
    "metadata": {"team": "a"},
    "created": 1_700_000_000,
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
    ],
}
MESSAGE_IDS = [f"{COMPLETION_ID}-0", f"{COMPLETION_ID}-1"]
# The create operation is served (docs/development.md, "The local OpenAI server") but the description's stored
# completion operations leave it out: it is declared below so that POST is not probed as unsupported,
# and not tested here (test_http.py and test_sdk.py beside this file cover it).
NOT_DESCRIBED: dict[str, Any] = {"method": "POST", "path": "/chat/completions"}

ERROR = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "additionalProperties": False,
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
ERROR_STATUSES = {"400": "Invalid request", "401": "Missing or wrong API key", "404": "No such completion"}


def corrected(published: dict[str, Any]) -> dict[str, Any]:
    """The published description with what it leaves out or gets wrong about the API corrected.

    Each correction states the API's behaviour the published text omits; none loosens a check.
    """
    spec = copy.deepcopy(published)
    schemas = spec["components"]["schemas"]
    paths = spec["paths"]

    # The excerpt drops the document's security: every operation takes the key as a bearer token.
    spec["components"]["securitySchemes"] = {"ApiKeyAuth": {"type": "http", "scheme": "bearer"}}
    spec["security"] = [{"ApiKeyAuth": []}]

    # No error responses are declared; the API answers errors as {"error": {message, type, param, code}}.
    schemas["Error"] = ERROR
    for item in paths.values():
        for operation in item.values():
            for status, description in ERROR_STATUSES.items():
                operation["responses"][status] = {
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }

    # Metadata's limits are stated in prose only: at most 16 keys of 1 to 64 characters, values of at
    # most 512 characters.
    metadata_map = schemas["Metadata"]["anyOf"][0]
    metadata_map["maxProperties"] = 16
    metadata_map["propertyNames"] = {"minLength": 1, "maxLength": 64}
    metadata_map["additionalProperties"] = {"type": "string", "maxLength": 512}

    # An empty page has no first or last id: the API answers null for both.
    for name in ("ChatCompletionList", "ChatCompletionMessageList"):
        for field in ("first_id", "last_id"):
            schemas[name]["properties"][field]["type"] = ["string", "null"]

    # Stored messages are the request's messages (its own example: role "user", no "refusal"), not
    # assistant replies as the item schema's reuse of ChatCompletionResponseMessage says.
    items = schemas["ChatCompletionMessageList"]["properties"]["data"]["items"]
    stored_message = items["allOf"][1]
    stored_message["required"] = ["id", "role", "content"]
    stored_message["properties"] |= {
        "role": {"type": "string", "enum": ["developer", "system", "user", "assistant", "tool", "function"]},
        "content": {"type": ["string", "null"]},
        "name": {"type": ["string", "null"]},
    }
    schemas["ChatCompletionMessageList"]["properties"]["data"]["items"] = stored_message

    # The filter's description is `metadata[key1]=value1&metadata[key2]=value2`: deepObject style.
    for parameter in paths["/chat/completions"]["get"]["parameters"]:
        if parameter["name"] == "metadata":
            parameter |= {"style": "deepObject", "explode": True}
        # Paging takes 1 to 100 items per page, 20 by default.
        if parameter["name"] == "limit":
            parameter["schema"] |= {"minimum": 1, "maximum": 100}
    for parameter in paths["/chat/completions/{completion_id}/messages"]["get"]["parameters"]:
        if parameter["name"] == "limit":
            parameter["schema"] |= {"minimum": 1, "maximum": 100}

    # The update takes `metadata` and nothing else: other arguments are "Unrecognized request argument".
    update_body = paths["/chat/completions/{completion_id}"]["post"]["requestBody"]
    update_body["content"]["application/json"]["schema"]["additionalProperties"] = False

    # Test data rather than corrections. The stored completion's id, so that generated requests reach
    # it as well as unknown ones; and the cursors that exist: `after` must name an item of the list
    # (an unknown one is a 400), and an empty `after` is no cursor.
    for item in paths.values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "completion_id":
                    parameter["examples"] = {"stored": {"value": COMPLETION_ID}}
    cursors = {"/chat/completions": [COMPLETION_ID], "/chat/completions/{completion_id}/messages": MESSAGE_IDS}
    for path, ids in cursors.items():
        for parameter in paths[path]["get"]["parameters"]:
            if parameter["name"] == "after":
                parameter["schema"]["enum"] = ["", *ids]
    paths["/chat/completions"]["post"] = {
        "operationId": "createChatCompletion",
        "summary": "Create a chat completion (not described in this excerpt).",
        "responses": {"200": {"description": "A chat completion"}},
    }
    return spec


def load_schema() -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(
        {
            # Never the published server: every request goes to the local server's base URL.
            "base-url": UNREACHABLE,
            "seed": 20_260_101,
            "auth": {"openapi": {"ApiKeyAuth": {"bearer": KEY}}},
            "generation": {"mode": "all", "max-examples": 25, "deterministic": True, "database": "none"},
            "request-timeout": 5,
            "continue-on-failure": True,  # report every distinct finding of an operation, not the first
        }
    )
    published = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    return schemathesis.openapi.from_dict(corrected(published), config=config)


schema = load_schema()


@pytest.fixture(scope="module")
def conformance_server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(api_key=KEY, seed_completions=[SEED]) as server:
        yield server


@schema.exclude(**NOT_DESCRIBED).parametrize()
def test_the_server_answers_as_the_description_says(
    case: schemathesis.Case[Any], conformance_server: LocalOpenAIServer
) -> None:
    conformance_server.reset()  # each case starts from the seeded completion, so cases are independent
    case.call_and_validate(base_url=conformance_server.base_url)


def test_every_described_operation_is_tested() -> None:
    described = {
        (operation.method.upper(), operation.path)
        for result in schema.exclude(**NOT_DESCRIBED).get_all_operations()
        for operation in [result.ok()]  # type: ignore[union-attr]
    }
    assert described == {
        ("GET", "/chat/completions"),
        ("GET", "/chat/completions/{completion_id}"),
        ("POST", "/chat/completions/{completion_id}"),
        ("DELETE", "/chat/completions/{completion_id}"),
        ("GET", "/chat/completions/{completion_id}/messages"),
    }
