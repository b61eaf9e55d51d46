"""`python -m local_stack run` end to end, as a subprocess (what `make run` does)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from local_openai.server import LocalOpenAIServer

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


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


def test_make_run_ends_every_message_and_shows_both_outcomes(tmp_path: Path) -> None:
    log = tmp_path / "function.log"
    result = run_local_stack("--function-log", str(log), "--timeout", "90", env=clean_environment())

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "CompletionTagged" in out
    assert "CompletionTagFailed" in out
    assert "validation_error" in out and "not_found" in out
    assert "[sample-upstream]" in out  # the request sent through EventBridge and the upstream rule
    # The samples go through the sender users get: the typo is refused before it is sent, naming the field.
    assert "refused by the sender, not sent: invalid: typo 'metdata': metadata: Field required" in out
    # The foreign-shape upstream event became a tag through the example mapping rule.
    assert "chatcmpl-demo-0007       merge ok: reviewed-by=ana, verdict=approved" in out
    assert "messages sent   11" in out
    assert "duplicates      1" in out
    assert "dead-lettered   0" in out
    assert "local_stack run: OK, all 11 messages ended" in out
    # The function's own JSON logs went to the log file, not the terminal.
    assert '"service":"completion-tagger"' in log.read_text()
    assert '"level"' not in out


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
