"""The sender's pieces without servers: validation with the function's models, batching, pacing,
selection filters, the report, and the command line's usage errors (exit code 2)."""

from __future__ import annotations

import codecs
import io
import json
import os
from collections.abc import Sequence

import pytest
from click.testing import CliRunner

from completion_tagger.cli import cli
from completion_tagger.delivery import Delivery, RetryPolicy, batches
from completion_tagger.destinations import DestinationError, EntryFailure, EventBusDestination
from completion_tagger.pacing import Pacer
from completion_tagger.requests import Line, TagSpec, completion_ids, json_lines, object_lines
from completion_tagger.selection import SelectionError, check_base_url, parse_selection
from completion_tagger.send_report import SendReport
from completion_tagger.stamping import IssuedAtStamps
from completion_tagger.validation import Outgoing, Rejected, check_request_id_prefix, validate
from tagger.models import TagRequest, format_issued_at, issued_at_instant

TEXT = '{"a": "é"}\n\n{"b": "👍"}\n'


def line(number: int, **fields: object) -> Line:
    return Line(number, json.dumps(fields))


def test_a_request_without_request_id_gets_prefix_and_line_number() -> None:
    checked = validate(line(7, completion_id="chatcmpl-a", metadata={"k": "v"}), "run-1")

    assert isinstance(checked, Outgoing)
    assert checked.request_id == "run-1-7"
    assert json.loads(checked.body) == {
        "completion_id": "chatcmpl-a",
        "metadata": {"k": "v"},
        "mode": "merge",
        "remove": [],
        "request_id": "run-1-7",
    }


def test_a_given_request_id_is_kept() -> None:
    checked = validate(line(1, completion_id="chatcmpl-a", metadata={"k": "v"}, request_id="mine"), "run")

    assert isinstance(checked, Outgoing) and checked.request_id == "mine"


def test_non_ascii_is_escaped_so_sqs_character_rules_never_refuse_a_body() -> None:
    checked = validate(line(1, completion_id="chatcmpl-a", metadata={"note": "ça \uffff 👍"}), "run")

    assert isinstance(checked, Outgoing)
    assert checked.body.isascii()
    assert TagRequest.model_validate_json(checked.body).metadata == {"note": "ça \uffff 👍"}


def test_an_eventbridge_event_line_sends_its_request_as_the_function_reads_it() -> None:
    event = {"detail-type": "X", "source": "s", "detail": {"completion_id": "chatcmpl-a", "metadata": {"k": "v"}}}

    checked = validate(Line(1, json.dumps(event)), "run")

    assert isinstance(checked, Outgoing)
    assert json.loads(checked.body)["completion_id"] == "chatcmpl-a"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"completion_id": "a/b", "metadata": {"k": "v"}}, "completion_id: String should match pattern"),
        ({"completion_id": "a", "metadata": {"k": "v" * 513}}, "metadata.k: String should have at most 512"),
        ({"completion_id": "a", "metadata": {}}, "metadata: a merge must set at least one key"),
        ({"completion_id": "a", "metadata": {"k": "v"}, "extra": 1}, "extra: unknown field"),
    ],
)
def test_an_invalid_request_is_rejected_with_the_functions_message(fields: dict[str, object], reason: str) -> None:
    checked = validate(Line(3, json.dumps(fields)), "run")

    assert isinstance(checked, Rejected)
    assert checked.number == 3
    assert checked.reason.startswith(reason)


def test_stamps_increase_strictly_even_when_the_clock_stands_still_or_steps_back() -> None:
    readings = iter([5_000_000, 5_000_000, 4_000_000, 5_000_010, 5_000_002])
    stamps = IssuedAtStamps(lambda: next(readings))

    values = [stamps.next() for _ in range(5)]

    assert values == [format_issued_at(m) for m in (5_000_000, 5_000_001, 5_000_002, 5_000_010, 5_000_011)]
    assert all(issued_at_instant(value) for value in values)


def test_a_request_without_issued_at_is_stamped_and_one_with_it_keeps_its_own() -> None:
    stamps = IssuedAtStamps(lambda: 1_764_861_158_913_456)

    stamped = validate(line(1, completion_id="chatcmpl-a", metadata={"k": "v"}), "run", stamps)
    given = line(2, completion_id="chatcmpl-a", metadata={"k": "v"}, issued_at="2026-01-01T00:00:00Z")
    own = validate(given, "run", stamps)

    assert isinstance(stamped, Outgoing) and isinstance(own, Outgoing)
    assert json.loads(stamped.body)["issued_at"] == "2025-12-04T15:12:38.913456Z"
    assert json.loads(own.body)["issued_at"] == "2026-01-01T00:00:00Z"


def test_request_id_prefix_must_leave_room_for_the_line_number() -> None:
    assert check_request_id_prefix("x" * 115) == "x" * 115
    with pytest.raises(ValueError, match="request id prefix"):
        check_request_id_prefix("x" * 116)


def test_lines_are_numbered_as_in_the_file_and_blank_ones_skipped() -> None:
    assert [x.number for x in json_lines(io.BytesIO(b'{"a": 1}\n\n  \n{"b": 2}\n'))] == [1, 4]
    assert [(x.number, x.text) for x in completion_ids(io.BytesIO(b"# ids\nchatcmpl-1\n\n chatcmpl-2 \r\n"))] == [
        (2, "chatcmpl-1"),
        (4, "chatcmpl-2"),
    ]


def test_a_line_that_is_not_utf8_is_named_and_the_lines_after_it_are_read() -> None:
    data = b'{"a": 1}\n{"b": "caf\xe9"}\n{"c": 3}\n'

    lines = list(json_lines(io.BytesIO(data)))

    assert [(x.number, x.text, x.problem) for x in lines] == [
        (1, '{"a": 1}', None),
        (
            2,
            "",
            "body: not valid utf-8 text (byte 0xe9 at byte 11 of the line); give --encoding if the file is not UTF-8",
        ),
        (3, '{"c": 3}', None),
    ]
    assert [(x.number, x.text) for x in json_lines(io.BytesIO(data), "latin-1")][1] == (2, '{"b": "café"}')


@pytest.mark.parametrize(
    ("encoded", "name"),
    [
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "UTF-8 with a byte order mark"),
        (codecs.BOM_UTF16_LE + TEXT.replace("\n", "\r\n").encode("utf-16-le"), "PowerShell's UTF-16 LE"),
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "UTF-16 BE"),
        (codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le"), "UTF-32 LE"),
    ],
)
def test_a_byte_order_mark_says_the_encoding(encoded: bytes, name: str) -> None:
    lines = list(json_lines(io.BytesIO(encoded)))

    assert [(x.number, x.text.strip(), x.problem) for x in lines] == [
        (1, '{"a": "é"}', None),
        (3, '{"b": "👍"}', None),
    ], name


def test_python_objects_become_lines() -> None:
    model = TagRequest(completion_id="chatcmpl-m", metadata={"k": "v"})
    lines = list(object_lines(['{"x": 1}', {"completion_id": "chatcmpl-d"}, model]))

    assert [x.number for x in lines] == [1, 2, 3]
    assert json.loads(lines[1].text) == {"completion_id": "chatcmpl-d"}
    assert TagRequest.model_validate_json(lines[2].text) == model


def test_tag_spec_builds_the_same_request_for_every_id() -> None:
    spec = TagSpec({"reviewed": "true"}, ("pending",))

    assert spec.request_for("chatcmpl-1") == {
        "completion_id": "chatcmpl-1",
        "metadata": {"reviewed": "true"},
        "remove": ["pending"],
    }
    assert TagSpec({"a": "b"}, mode="replace").request_for("x")["mode"] == "replace"


def outgoing(number: int, size: int = 10) -> Outgoing:
    return Outgoing(number, "x" * size, f"r-{number}")


def test_batches_hold_at_most_ten_requests_in_order() -> None:
    groups = list(batches((outgoing(n) for n in range(1, 26)), lambda o: len(o.body)))

    assert [len(group) for group in groups] == [10, 10, 5]
    assert [o.number for group in groups for o in group] == list(range(1, 26))


def test_batches_stay_within_one_calls_payload_limit() -> None:
    groups = list(batches((outgoing(n, 40_000) for n in range(10)), lambda o: len(o.body)))

    assert [len(group) for group in groups] == [6, 4]  # 7 x 40,000 bytes would pass 256 KiB


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_pacer_spreads_requests_to_the_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(20, clock=clock, sleep=clock.sleep)

    for _ in range(3):
        pacer.wait(10)

    assert clock.sleeps == [0.5, 0.5]  # 10 requests at 20 per second take half a second each


def test_pacer_counts_time_already_spent_sending() -> None:
    clock = FakeClock()
    pacer = Pacer(20, clock=clock, sleep=clock.sleep)

    pacer.wait(10)
    clock.now += 0.4  # the call itself took 0.4 s
    pacer.wait(10)

    assert clock.sleeps == [pytest.approx(0.1)]


@pytest.mark.parametrize(("rate", "limit"), [(None, 10), (0.5, 1), (5, 1), (10, 1), (35, 3), (100, 10), (5000, 10)])
def test_a_paced_call_carries_at_most_a_tenth_of_a_seconds_requests(rate: float | None, limit: int) -> None:
    assert Pacer(rate).batch_limit == limit


def test_at_five_per_second_requests_leave_one_by_one_a_fifth_of_a_second_apart() -> None:
    clock = FakeClock()
    pacer = Pacer(5, clock=clock, sleep=clock.sleep)
    groups = list(batches((outgoing(n) for n in range(1, 6)), lambda o: len(o.body), max_entries=pacer.batch_limit))

    for group in groups:
        pacer.wait(len(group))

    assert [len(group) for group in groups] == [1, 1, 1, 1, 1]
    assert clock.sleeps == [pytest.approx(0.2)] * 4


def test_pacer_without_a_rate_never_waits_and_refuses_a_non_positive_rate() -> None:
    clock = FakeClock()
    Pacer(None, clock=clock, sleep=clock.sleep).wait(10_000)
    assert clock.sleeps == []
    with pytest.raises(ValueError, match="rate"):
        Pacer(0)


def test_selection_filters_and_model() -> None:
    selection = parse_selection(["metadata[review]=pending", "metadata[team]=a=b"], model="gpt-x")

    assert selection.query() == {"metadata[review]": "pending", "metadata[team]": "a=b", "model": "gpt-x"}
    with pytest.raises(SelectionError, match="expected 'metadata\\[KEY\\]=VALUE'"):
        parse_selection(["review=pending"])
    with pytest.raises(SelectionError, match="at least one"):
        parse_selection([])


def test_the_key_only_goes_over_tls_or_to_this_machine() -> None:
    assert check_base_url("https://api.openai.com/v1/") == "https://api.openai.com/v1"
    assert check_base_url("http://127.0.0.1:8010/v1") == "http://127.0.0.1:8010/v1"
    with pytest.raises(SelectionError, match="OPENAI_BASE_URL"):
        check_base_url("http://example.com/v1")


def test_report_lists_problems_in_input_order_and_is_ok_only_when_all_sent() -> None:
    report = SendReport(destination="queue q", request_id_prefix="p", read=5, sent=3)
    assert report.ok
    report.invalid.append(Rejected(4, "metadata: Field required"))
    report.failed.append(Rejected(2, "InternalError: x"))

    assert not report.ok
    assert report.problem_lines() == ["line 2: not sent: InternalError: x", "line 4: invalid: metadata: Field required"]
    assert report.summary_lines()[0] == "read 5, sent 3, invalid 1, failed 1  (to queue q)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give one input"),
        (["-", "--ids", "-"], "give one input"),
        (["-", "--tag", "a=b", "--queue-url", "q"], "go with --ids or --select"),
        (["--ids", "-", "--tag", "novalue", "--queue-url", "q"], "--tag expects KEY=VALUE"),
        (["--ids", "-", "--queue-url", "q"], "a merge must set at least one key"),
        (
            ["--ids", "-", "--mode", "replace", "--tag", "a=b", "--remove", "c", "--queue-url", "q"],
            "remove: not allowed",
        ),
        (["-"], "exactly one destination"),
        (["-", "--queue-url", "q", "--event-bus", "b"], "exactly one destination"),
        (["--select", "review=pending", "--tag", "a=b", "--queue-url", "q"], "--select: expected"),
        (["-", "--rate", "0", "--queue-url", "q"], "--rate"),
    ],
)
def test_usage_errors_exit_2_with_a_message(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["send", *args], input="")

    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_too_many_tags_is_a_usage_error_naming_the_field() -> None:
    tags = [arg for n in range(17) for arg in ("--tag", f"k{n}=v")]

    result = CliRunner().invoke(cli, ["send", "--ids", "-", *tags, "--dry-run"], input="chatcmpl-1\n")

    assert result.exit_code == 2
    assert "metadata: Dictionary should have at most 16 items" in result.stderr


def test_no_aws_region_is_a_usage_error_unless_the_queue_url_names_one(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    aws_queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/q"

    without = CliRunner().invoke(cli, ["send", "-", "--event-bus", "b"], input="")
    with_url = CliRunner().invoke(cli, ["send", "-", "--queue-url", aws_queue], input="")

    assert without.exit_code == 2
    assert "no AWS region" in without.stderr
    assert with_url.exit_code == 0, with_url.output  # nothing to send, and the region is the queue's
    assert "read 0, sent 0" in with_url.stdout


class RecordingDestination:
    """Accepts every batch and remembers it; takes entries of at most `max_entry_bytes`."""

    description = "the test destination"

    def __init__(self, max_entry_bytes: int) -> None:
        self.max_entry_bytes = max_entry_bytes
        self.batches: list[list[int]] = []

    def entry_size(self, entry: Outgoing) -> int:
        return len(entry.body)

    def send_batch(self, entries: Sequence[Outgoing]) -> list[EntryFailure]:
        self.batches.append([entry.number for entry in entries])
        return []


def test_a_request_over_the_destinations_entry_limit_is_named_and_the_others_are_sent() -> None:
    destination = RecordingDestination(max_entry_bytes=100)
    delivery = Delivery(destination)

    tally = delivery.send([outgoing(1), outgoing(2, size=101), outgoing(3), outgoing(4, size=100)])

    assert destination.batches == [[1, 3, 4]]
    assert tally.sent == 3
    assert tally.failed == [Rejected(2, "too large: 101 bytes, where the test destination takes 100")]


def test_event_bus_entries_are_sized_as_eventbridge_counts_them() -> None:
    bus = EventBusDestination(None, "bus", detail_type="Tagged", source="src.é")  # type: ignore[arg-type]

    assert bus.entry_size(Outgoing(1, '{"k":"ü"}', "r")) == len("Tagged") + len("src.é".encode()) + len(
        '{"k":"ü"}'.encode()
    )


class RefusesOnRetry(RecordingDestination):
    """The first call fails entries 3 and 7 retryably; the retry is refused as a whole (e.g. access revoked)."""

    def send_batch(self, entries: Sequence[Outgoing]) -> list[EntryFailure]:
        self.batches.append([entry.number for entry in entries])
        if len(self.batches) == 1:
            return [EntryFailure(3, "InternalError", retryable=True), EntryFailure(7, "InternalError", retryable=True)]
        raise DestinationError("AccessDenied")


def test_a_destination_error_on_a_retry_counts_what_the_first_try_got_through_as_sent() -> None:
    destination = RefusesOnRetry(max_entry_bytes=1000)
    delivery = Delivery(destination, retry=RetryPolicy(attempts=3, initial_seconds=0), sleep=lambda seconds: None)

    with pytest.raises(DestinationError):
        delivery.send(outgoing(n) for n in range(1, 11))

    assert destination.batches == [list(range(1, 11)), [3, 7]]
    assert delivery.tally.sent == 8
    assert delivery.tally.failed == [Rejected(3, "AccessDenied"), Rejected(7, "AccessDenied")]
