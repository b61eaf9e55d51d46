"""Every PutEvents attempt after the API write fits in what is left of the invocation.

EventBridge is replaced, for the first invocation, by a listener that accepts connections and never answers
(an AWS endpoint that hangs): each attempt runs into the publisher's short read timeout. The function must
stop resending while the invocation still has time to finish, put the record back, and publish the event on the
redelivery without a second API write.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import boto3
import pytest

from local_stack.lambda_context import LocalLambdaContext
from tagger.adapters.after_write_clients import ATTEMPT_SECONDS
from tagger.adapters.publisher import AFTER_PUBLISH_SECONDS, PUBLISH_ATTEMPTS
from tests.integration.harness import Harness, Seeder, failures

pytestmark = pytest.mark.integration


@pytest.fixture
def hanging_endpoint() -> Iterator[str]:
    """An HTTP endpoint that accepts every connection and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for connection in accepted:
        connection.close()


def test_a_hanging_eventbridge_cannot_run_the_invocation_out_of_time(
    harness: Harness,
    seed: Seeder,
    hanging_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    completion = seed()
    request = {"completion_id": completion, "metadata": {"a": "1"}, "mode": "replace"}
    [record] = harness.deliver([request])
    seconds_left_at_attempts: list[float] = []
    session = boto3.session.Session()
    session.events.register(
        "before-send.events.PutEvents",
        lambda **_: seconds_left_at_attempts.append(context.get_remaining_time_in_millis() / 1000),
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", hanging_endpoint)
    service = harness.service(session=session, time_reserve_millis=3000)
    monkeypatch.delenv("AWS_ENDPOINT_URL_EVENTBRIDGE")
    # The countdown starts once the service is built, as Lambda's starts after the cold start's init. The
    # 3 s before the reserve leave room for the lease and the API write on a loaded machine; at most two
    # attempts ever fit in the rest (see below).
    context = LocalLambdaContext(timeout_seconds=6.0)

    response = service.handle({"Records": [record]}, context, harness.metrics)  # type: ignore[arg-type]

    assert context.get_remaining_time_in_millis() > 0  # the handler returned before the function's timeout
    assert failures(dict(response)) == {record["messageId"]}  # put back: its event is not published yet
    assert harness.api.metadata_of(completion) == {"a": "1"}  # the write was applied
    # One attempt, resent only while another still fits (botocore adds no attempts of its own): in a 6 s
    # invocation there is never time for the third, however fast the rest went (the third would need
    # ATTEMPT_SECONDS + AFTER_PUBLISH_SECONDS left after two attempts of ATTEMPT_SECONDS each).
    assert 1 <= len(seconds_left_at_attempts) < PUBLISH_ATTEMPTS
    assert all(left >= ATTEMPT_SECONDS + AFTER_PUBLISH_SECONDS for left in seconds_left_at_attempts[1:])
    assert "no time left in the invocation to resend result events" in caplog.messages

    response_again, _ = harness.run(harness.service(), [request], receive_count=2)
    assert response_again == {"batchItemFailures": []}
    assert harness.api.stats()["updates_by_completion"][completion] == 1  # no second write
    assert [event["detail"]["completion_id"] for event in harness.events(1)] == [completion]
