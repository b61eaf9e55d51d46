"""What `make local-services` reads from events/ and how it refuses a port it cannot have."""

from __future__ import annotations

import json
import socket

from local_stack.services import EVENTS_DIR, LocalInvokeSetup, port_unavailable


def test_the_setup_is_what_env_json_and_the_samples_name() -> None:
    setup = LocalInvokeSetup.from_events()
    env = json.loads((EVENTS_DIR / "env.json").read_text())["TaggerFunction"]
    assert (setup.aws_port, setup.openai_port) == (5000, 8010)
    assert setup.names.table == env["IDEMPOTENCY_TABLE_NAME"]
    assert setup.names.event_bus == env["EVENT_BUS_NAME"]
    for sample in setup.samples:
        for record in json.loads(sample.read_text())["Records"]:
            assert record["eventSourceARN"].endswith(f":{setup.names.queue}"), sample.name


def test_a_port_in_use_is_refused_with_the_reason() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert port_unavailable("127.0.0.1", port) == "Address already in use"
    assert port_unavailable("127.0.0.1", port) is None
    assert port_unavailable("127.0.0.1", 0) is None
