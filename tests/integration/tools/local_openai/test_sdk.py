"""The local OpenAI server driven by the official ``openai`` SDK, as the tagger's client would."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from local_openai import CANNED_REPLY, LocalOpenAIServer
from tests.integration.harness import API_KEY

pytestmark = pytest.mark.integration

KEY = API_KEY


@pytest.fixture
def server(api: LocalOpenAIServer) -> LocalOpenAIServer:
    """The session's local OpenAI server (conftest), reset for this test."""
    return api


@pytest.fixture
def client(server: LocalOpenAIServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0, timeout=5.0) as sdk:
        yield sdk


def create(client: openai.OpenAI, metadata: dict[str, str] | None = None, *, store: bool = True) -> str:
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "tag me"}],
        store=store,
        metadata=metadata,
    )
    return completion.id


def test_create_stored_then_retrieve(client: openai.OpenAI, server: LocalOpenAIServer) -> None:
    created = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}],
        store=True,
        metadata={"team": "core"},
    )
    assert created.object == "chat.completion"
    assert created.id.startswith("chatcmpl-")
    assert created.choices[0].message.content == CANNED_REPLY
    assert created.usage is not None and created.usage.total_tokens > 0

    fetched = client.chat.completions.retrieve(created.id)
    assert fetched.id == created.id
    assert fetched.metadata == {"team": "core"}
    assert fetched.model == "gpt-4o-mini"
    assert server.metadata_of(created.id) == {"team": "core"}


def test_not_stored_completion_is_not_found(client: openai.OpenAI) -> None:
    completion_id = create(client, {"a": "1"}, store=False)
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.retrieve(completion_id)
    assert caught.value.code == "not_found"
    assert completion_id in caught.value.message


def test_update_replaces_the_metadata(client: openai.OpenAI, server: LocalOpenAIServer) -> None:
    completion_id = create(client, {"a": "1", "b": "2"})

    updated = client.chat.completions.update(completion_id, metadata={"c": "3"})

    assert updated.id == completion_id
    assert updated.metadata == {"c": "3"}
    assert server.metadata_of(completion_id) == {"c": "3"}
    assert client.chat.completions.update(completion_id, metadata=None).metadata == {}
    assert server.stats()["updates_by_completion"] == {completion_id: 2}


def test_update_of_unknown_completion_is_not_found(client: openai.OpenAI, server: LocalOpenAIServer) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.update("chatcmpl-missing", metadata={"a": "1"})
    assert caught.value.body == {
        "message": "No chat completion found with id 'chatcmpl-missing'.",
        "type": "invalid_request_error",
        "param": None,
        "code": "not_found",
    }
    assert server.stats()["updates_by_completion"] == {}


@pytest.mark.parametrize(
    ("metadata", "code", "param"),
    [
        ({f"k{i}": "v" for i in range(17)}, "object_above_max_properties", "metadata"),
        ({"k": "x" * 513}, "string_above_max_length", "metadata.k"),
        ({"k" * 65: "v"}, "string_above_max_length", "metadata." + "k" * 65),
        ({"k": 1}, "invalid_type", "metadata.k"),
    ],
    ids=["17-keys", "long-value", "long-key", "number-value"],
)
def test_update_over_limits_is_a_bad_request(
    client: openai.OpenAI, server: LocalOpenAIServer, metadata: dict[str, str], code: str, param: str
) -> None:
    completion_id = create(client, {"keep": "me"})
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.update(completion_id, metadata=metadata)
    assert caught.value.code == code
    assert caught.value.param == param
    assert caught.value.type == "invalid_request_error"
    assert server.metadata_of(completion_id) == {"keep": "me"}
    assert server.stats()["updates_by_completion"] == {}


def test_update_at_the_limits_is_accepted(client: openai.OpenAI) -> None:
    completion_id = create(client)
    metadata = {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}
    assert client.chat.completions.update(completion_id, metadata=metadata).metadata == metadata


def test_list_filters_by_metadata_and_pages(client: openai.OpenAI) -> None:
    tagged = [create(client, {"run": "r1", "n": str(i)}) for i in range(5)]
    create(client, {"run": "r2"})
    create(client)

    first = client.chat.completions.list(metadata={"run": "r1"}, limit=2)
    assert [item.id for item in first.data] == tagged[:2]
    assert first.has_more is True

    second = client.chat.completions.list(metadata={"run": "r1"}, limit=2, after=tagged[1])
    assert [item.id for item in second.data] == tagged[2:4]

    everything = [item.id for item in client.chat.completions.list(metadata={"run": "r1"}, limit=2)]
    assert everything == tagged  # auto-pagination follows has_more / the last id

    newest_first = client.chat.completions.list(metadata={"run": "r1"}, order="desc", limit=3)
    assert [item.id for item in newest_first.data] == tagged[::-1][:3]

    both = client.chat.completions.list(metadata={"run": "r1", "n": "3"})
    assert [item.id for item in both.data] == [tagged[3]]
    assert len(client.chat.completions.list().data) == 7


def test_list_filters_by_model(client: openai.OpenAI, server: LocalOpenAIServer) -> None:
    create(client)
    other = server.seed_completion("chatcmpl-other-model", model="gpt-4.1")
    assert [item.id for item in client.chat.completions.list(model="gpt-4.1").data] == [other["id"]]


def test_messages_list(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": f"message {i}"} for i in range(3)],
        store=True,
    )
    page = client.chat.completions.messages.list(completion.id, limit=2)
    assert [message.content for message in page.data] == ["message 0", "message 1"]
    assert page.has_more is True
    assert page.data[0].id == f"{completion.id}-0"
    everything = [message.content for message in client.chat.completions.messages.list(completion.id, limit=2)]
    assert everything == ["message 0", "message 1", "message 2"]
    newest = client.chat.completions.messages.list(completion.id, order="desc", limit=1)
    assert [message.content for message in newest.data] == ["message 2"]


def test_delete(client: openai.OpenAI, server: LocalOpenAIServer) -> None:
    completion_id = create(client)
    deleted = client.chat.completions.delete(completion_id)
    assert deleted.deleted is True
    assert deleted.id == completion_id
    assert deleted.object == "chat.completion.deleted"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.retrieve(completion_id)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.delete(completion_id)
    with pytest.raises(KeyError):
        server.metadata_of(completion_id)


def test_injected_429_is_a_rate_limit_error_with_retry_after(client: openai.OpenAI, server: LocalOpenAIServer) -> None:
    completion_id = create(client)
    server.inject_fault(429, retry_after=2, retry_after_ms=1500, method="POST", completion_id=completion_id)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.update(completion_id, metadata={"a": "1"})
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.response.headers["retry-after-ms"] == "1500"
    assert server.metadata_of(completion_id) == {}
    # one-shot: the next attempt goes through
    assert client.chat.completions.update(completion_id, metadata={"a": "1"}).metadata == {"a": "1"}


def test_sdk_retries_honour_retry_after_ms(server: LocalOpenAIServer) -> None:
    server.seed_completion("chatcmpl-retried")
    server.inject_fault(503, count=2, retry_after_ms=10)
    with openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=2) as sdk:
        assert sdk.chat.completions.update("chatcmpl-retried", metadata={"x": "y"}).metadata == {"x": "y"}
    stats = server.stats()
    assert stats["requests"] == {"POST /v1/chat/completions/{id}": 3}
    assert stats["statuses"] == {"503": 2, "200": 1}
    assert stats["updates_by_completion"] == {"chatcmpl-retried": 1}


def test_injected_500_is_an_internal_server_error(client: openai.OpenAI, server: LocalOpenAIServer) -> None:
    server.inject_fault(500)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.list()
    assert caught.value.type == "server_error"


def test_wrong_key_is_an_authentication_error(server: LocalOpenAIServer) -> None:
    wrong = "sk-wrong-key-that-must-not-be-echoed"
    with (
        openai.OpenAI(base_url=server.base_url, api_key=wrong, max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        sdk.chat.completions.list()
    assert caught.value.code == "invalid_api_key"
    assert wrong not in caught.value.message
    assert wrong not in caught.value.response.text


def test_rotated_key_takes_effect_at_run_time(client: openai.OpenAI, server: LocalOpenAIServer) -> None:
    server.configure(api_key="sk-rotated")
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.list()
    with openai.OpenAI(base_url=server.base_url, api_key="sk-rotated", max_retries=0) as sdk:
        assert sdk.chat.completions.list().data == []
