"""`python -m local_stack run` end to end, as a subprocess (what `make run` does)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from jsonschema import Draft4Validator  # type: ignore[import-untyped]

from local_openai.server import LocalOpenAIServer

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[4]


def run_local_stack(*args: str, env: dict[str, str], timeout: float = 100) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local_stack", "run", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def clean_environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OPENAI_", "AWS_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@dataclass(frozen=True)
class MakeRun:
    result: subprocess.CompletedProcess[str]
    log: Path
    events_file: Path
    results_file: Path


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> MakeRun:
    """One `make run` with the defaults, shared by the tests that read its output."""
    directory = tmp_path_factory.mktemp("make-run")
    log, events_file, results_file = directory / "function.log", directory / "events.jsonl", directory / "results.jsonl"
    result = run_local_stack(
        "--function-log",
        str(log),
        "--events-file",
        str(events_file),
        "--results-file",
        str(results_file),
        "--timeout",
        "90",
        env=clean_environment(),
    )
    return MakeRun(result, log, events_file, results_file)


def test_make_run_ends_every_message_and_shows_both_outcomes(make_run: MakeRun) -> None:
    result = make_run.result
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "local_stack run: OK, all 20 messages ended" in out
    assert "CompletionTagged" in out
    assert "CompletionTagFailed" in out
    assert "validation_error" in out and "not_found" in out  # the non-JSON body and the unknown id
    assert "[sample-upstream]" in out  # the request sent through EventBridge and the upstream rule
    # The samples go through the sender users get: the typo is refused before it is sent, naming the field.
    assert "refused by the sender, not sent: invalid: typo 'metdata': metadata: Field required" in out
    # The foreign-shape upstream event became a tag through the example mapping rule.
    assert "chatcmpl-demo-0007       merge ok: reviewed-by=ana, verdict=approved" in out
    assert "messages sent   20" in out
    assert "duplicates      1" in out
    assert "dead-lettered   0" in out
    # Three containers by default, each a process of its own, each listed with its work.
    assert "containers      3" in out
    pids = re.findall(r"^    container \d \(pid (\d+)\): invocations", out, flags=re.MULTILINE)
    assert len(set(pids)) == 3
    # The scripted fault cut one write off, so its record was put back.
    put_back = re.search(r"^  invocations .* put back (\d+)", out, flags=re.MULTILINE)
    assert put_back is not None and int(put_back.group(1)) >= 1
    # The function's own JSON logs went to the log file, not the terminal.
    assert '"service":"completion-tagger"' in make_run.log.read_text()
    assert '"level"' not in out
    # Every result event it showed, as EventBridge delivered it, matches the published schema.
    events = [json.loads(line) for line in make_run.events_file.read_text().splitlines()]
    shown = [line for line in out.splitlines() if line.startswith(("  CompletionTagged ", "  CompletionTagFailed "))]
    assert len(events) == len(shown) >= 10
    schemas = {
        "CompletionTagged": Draft4Validator(json.loads((REPO_ROOT / "schemas/completion-tagged.json").read_text())),
        "CompletionTagFailed": Draft4Validator(
            json.loads((REPO_ROOT / "schemas/completion-tag-failed.json").read_text())
        ),
    }
    for event in events:
        # moto's SQS target leaves out `account`, which EventBridge always sends; everything else is as delivered.
        delivered = {"account": "123456789012"} | event
        assert [error.message for error in schemas[event["detail-type"]].iter_errors(delivered)] == [], event


def test_make_run_sends_its_queue_samples_with_send_wait_and_reports_each_line(make_run: MakeRun) -> None:
    out = make_run.result.stdout
    assert "send --wait (the queue samples" in out
    results = [json.loads(line) for line in make_run.results_file.read_text().splitlines()]
    outcomes = {record["outcome"] for record in results}
    assert outcomes <= {"tagged", "duplicate", "failed", "not_sent"}, results  # every line ended, none lost
    assert "tagged" in outcomes and "not_sent" in outcomes  # the typo was refused before sending
    assert all(record["message_id"] for record in results if record["outcome"] != "not_sent")
    assert re.search(r"^  tagged\s+\d+$", out, flags=re.MULTILINE), out


def test_make_run_shared_completions_match_the_send_order_with_nothing_delivered_twice(make_run: MakeRun) -> None:
    out = make_run.result.stdout
    assert re.search(r"^  verified        3      completions match the send order", out, flags=re.MULTILINE), out
    assert "these differ" not in out
    assert "deleted twice" not in out and "more than one result event" not in out


def test_real_openai_mode_uses_the_given_endpoint_and_never_prints_the_key(tmp_path: Path) -> None:
    key = "sk-test-real-mode-0123456789"
    ids = tmp_path / "ids.txt"
    ids.write_text("# stored completions\nchatcmpl-real-1\n\nchatcmpl-real-2\n")
    with LocalOpenAIServer(api_key=key) as api:  # stands in for api.openai.com
        api.seed_completion("chatcmpl-real-1", {"owner": "me"})
        api.seed_completion("chatcmpl-real-2", {})
        env = clean_environment() | {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": api.base_url}
        result = run_local_stack(
            "--completion-ids",
            str(ids),
            "--tag",
            "reviewed=true",
            "--tag",
            "batch=7",
            "--function-log",
            str(tmp_path / "function.log"),
            env=env,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert api.metadata_of("chatcmpl-real-1") == {"owner": "me", "reviewed": "true", "batch": "7"}
        assert api.metadata_of("chatcmpl-real-2") == {"reviewed": "true", "batch": "7"}
    assert f"OpenAI API at {api.base_url}" in result.stdout
    assert "API calls       n/a" in result.stdout
    assert key not in result.stdout + result.stderr
    assert key not in (tmp_path / "function.log").read_text()


def test_completion_ids_without_a_key_is_refused(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("chatcmpl-x\n")
    result = run_local_stack("--completion-ids", str(ids), env=clean_environment(), timeout=30)
    assert result.returncode == 2
    assert "set OPENAI_API_KEY" in result.stdout


def test_concurrency_out_of_range_is_a_usage_error() -> None:
    result = run_local_stack("--concurrency", "21", env=clean_environment(), timeout=30)
    assert result.returncode == 2
    assert "--concurrency must be between 1 and 20, not 21" in result.stdout
