"""What `sam build` makes, run the way Lambda's python3.13 runtime runs it.

The artifact is built with `make build-host` (the template's build, wheels for this machine), then run in
a fresh Python 3.13 process started with `-I -S`: its import path holds only the built function, the
built layer and boto3/botocore (standing in for the runtime's). A module the layer lacks, a package only
the development venv has, or a break only 3.13 shows fails here.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from artifact import pythons
from artifact.runtime import BuiltArtifact, build_host, run_probe, runtime_packages
from local_stack.aws_endpoint import aws_environment
from local_stack.services import LocalInvokeSetup
from tests.integration.harness import EVENTS, Harness, Seeder, failures, sample_environment, seed_sample_completions
from tests.integration.local_services import start_local_services

RUNTIME_PYTHON = pythons.runtime_python()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        RUNTIME_PYTHON is None, reason="no Python 3.13 (the Lambda runtime) here: the built artifact needs it"
    ),
]
SAMPLES = sorted(EVENTS.glob("sqs-*.json"))
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuiltArtifact:
    return build_host(tmp_path_factory.mktemp("sam-build"))


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return runtime_packages(tmp_path_factory.mktemp("var-runtime"))


def invoke(built: BuiltArtifact, runtime_dir: Path, events: list[Path], env: dict[str, str]) -> dict[str, Any]:
    assert RUNTIME_PYTHON is not None
    return run_probe(RUNTIME_PYTHON, built, runtime_dir, ["invoke", *map(str, events)], env)


def mixed_batch(harness: Harness, seed: Seeder, directory: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    """An SQS event of every kind of record; returns its file, the expected outcome by messageId, and ids."""
    ids = {name: seed({"stage": "draft"}) for name in ("merged", "replaced", "twice", "enveloped")}
    bodies: list[str | dict[str, Any]] = [
        {"completion_id": ids["merged"], "metadata": {"reviewed": "true"}, "remove": ["stage"]},
        {"completion_id": ids["replaced"], "mode": "replace", "metadata": {"label": "golden"}},
        {"completion_id": ids["twice"], "metadata": {"first": "1"}},
        {"completion_id": ids["twice"], "metadata": {"second": "2"}, "remove": ["first"]},
        {"completion_id": ids["merged"], "metdata": {"typo": "yes"}},
        "not json at all",
        {"completion_id": "chatcmpl-nobody-stored-this", "metadata": {"a": "b"}},
        {
            "detail-type": "CompletionTagRequested",
            "source": "my.app",
            "detail": {"completion_id": ids["enveloped"], "metadata": {"via": "eventbridge"}},
        },
    ]
    records = harness.deliver(bodies)
    expected = ["tagged"] * 4 + ["validation_error", "validation_error", "not_found", "tagged"]
    path = directory / "mixed-batch.json"
    path.write_text(json.dumps({"Records": records}), encoding="utf-8")
    return path, {record["messageId"]: outcome for record, outcome in zip(records, expected, strict=True)}, ids


def outcome(event: dict[str, Any]) -> str:
    return "tagged" if event["detail-type"] == "CompletionTagged" else event["detail"]["error"]["code"]


def test_the_built_artifact_on_python_313_handles_every_sample_and_a_mixed_batch(
    built: BuiltArtifact, runtime_dir: Path, harness: Harness, seed: Seeder, tmp_path: Path
) -> None:
    seed_sample_completions(harness.api)
    batch, expected, ids = mixed_batch(harness, seed, tmp_path)
    env = sample_environment(harness) | aws_environment(harness.sqs.meta.endpoint_url)

    result = invoke(built, runtime_dir, [*SAMPLES, batch], env)

    assert result["python"].startswith("3.13.")
    assert all(failures(response) == set() for response in result["responses"].values())
    events = harness.events(expected=len(expected) + 5)
    by_message = {event["detail"]["message_id"]: outcome(event) for event in events}
    assert {message: by_message.get(message) for message in expected} == expected
    assert sorted(outcome(event) for event in events if event["detail"]["message_id"] not in expected) == [
        "tagged",
        "tagged",
        "tagged",
        "tagged",
        "validation_error",
    ]  # the samples: merge, replace, envelope, and the mixed sample's valid record and typo
    assert harness.api.metadata_of(ids["merged"]) == {"reviewed": "true"}
    assert harness.api.metadata_of(ids["replaced"]) == {"label": "golden"}
    assert harness.api.metadata_of(ids["twice"]) == {"stage": "draft", "second": "2"}
    assert harness.api.metadata_of("chatcmpl-demo-0002") == {"label": "golden", "split": "eval"}


def test_the_built_artifact_imports_only_itself_and_the_runtime_and_never_compiles(
    built: BuiltArtifact, runtime_dir: Path, harness: Harness
) -> None:
    env = sample_environment(harness) | aws_environment(harness.sqs.meta.endpoint_url)
    seed_sample_completions(harness.api)

    result = invoke(built, runtime_dir, [EVENTS / "sqs-merge.json"], env)

    origins = result["origins"]
    assert origins["elsewhere_files"] == []
    assert set(origins["counts"]) <= {"function", "layer", "runtime", "stdlib", "built-in", "probe"}
    assert {line.split()[0] for line in origins["function_files"]} >= {
        "tagger.app",
        "tagger.composition",
        "tagger.logic.service",
    }
    # Cold start: Powertools' pydantic parser models (loaded by its batch package when pydantic is imported
    # first) and anyio (httpcore's, for async) are never loaded.
    layer_modules = {line.split()[0] for line in origins["layer_files"]}
    assert not {name for name in layer_modules if name.startswith(("aws_lambda_powertools.utilities.parser", "anyio"))}
    # Nothing of the artifact was compiled while loading: the layer ships bytecode instead of sources,
    # the function its sources with bytecode the runtime uses without checking them.
    assert result["compiled_from_source"] == []
    assert {line.rsplit(".", 1)[-1] for line in origins["layer_files"]} <= {"pyc", "so"}, "a layer module from source"
    assert not list(built.layer.rglob("*.py"))
    for source in (built.function / "tagger").rglob("*.py"):
        cached = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        assert cached.read_bytes()[4:8] == b"\x01\x00\x00\x00", f"{cached.name} is not unchecked-hash bytecode"


@pytest.fixture
def local_services() -> Iterator[tuple[int, int, subprocess.Popen[str]]]:
    """`python -m local_stack services` (what `make local-services` runs) on free loopback ports."""
    running = start_local_services("127.0.0.1")
    assert "sam local invoke TaggerFunction --region us-east-1 -e events/sqs-merge.json" in running.banner
    yield running.aws_port, running.openai_port, running.process
    running.stop()


def test_local_services_serve_every_sample_as_events_env_json_points_sam_local(
    built: BuiltArtifact, runtime_dir: Path, local_services: tuple[int, int, subprocess.Popen[str]]
) -> None:
    aws_port, openai_port, process = local_services
    setup = LocalInvokeSetup.from_events()
    env_json: dict[str, str] = json.loads((EVENTS / "env.json").read_text())["TaggerFunction"]
    env = {
        name: value.replace(f"host.docker.internal:{setup.aws_port}", f"127.0.0.1:{aws_port}").replace(
            f"host.docker.internal:{setup.openai_port}", f"127.0.0.1:{openai_port}"
        )
        for name, value in env_json.items()
    }
    # What `sam local invoke --region us-east-1` adds in the container without an AWS profile.
    env |= {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "defaultkey",
        "AWS_SECRET_ACCESS_KEY": "defaultsecret",
        "AWS_SAM_LOCAL": "true",
        "AWS_LAMBDA_FUNCTION_NAME": "TaggerFunction",
        "LAMBDA_TASK_ROOT": str(built.function),
    }

    for sample in SAMPLES:  # one fresh process per sample, as `sam local invoke` starts one container each
        result = invoke(built, runtime_dir, [sample], env)
        assert failures(result["responses"][str(sample)]) == set(), sample.name

    api = httpx.Client(base_url=f"http://127.0.0.1:{openai_port}/v1", headers={"Authorization": "Bearer local"})
    assert api.get("/chat/completions/chatcmpl-demo-0002").json()["metadata"] == {"label": "golden", "split": "eval"}
    assert api.get("/chat/completions/chatcmpl-demo-0004").json()["metadata"]["project"] == "demo"
    sqs = boto3.client(
        "sqs",
        endpoint_url=f"http://127.0.0.1:{aws_port}",
        region_name="us-east-1",
        aws_access_key_id="defaultkey",
        aws_secret_access_key="defaultsecret",
    )
    observer = sqs.get_queue_url(QueueName=setup.names.observer_queue)["QueueUrl"]
    depth = sqs.get_queue_attributes(QueueUrl=observer, AttributeNames=["ApproximateNumberOfMessages"])
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "5"  # 4 tagged, 1 typo; the duplicate: none

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert process.stdout is not None
    assert "local services stopped" in process.stdout.read()
