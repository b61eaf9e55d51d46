"""Build the artifact for this machine and run it in a fresh interpreter laid out like the Lambda runtime.

`build_host` runs `make build-host` (`sam build` with the pinned SAM CLI, wheels for this machine's
platform); `run_probe` starts `tools/artifact/probe.py` under the runtime's Python with `-I -S`, so the only
importable code is the built function, the built layer and boto3/botocore as the runtime provides them.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).resolve().with_name("probe.py")
# What the Lambda Python runtime provides beside the standard library (boto3 and what it needs).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six")


@dataclass(frozen=True)
class BuiltArtifact:
    """Where `sam build` put the function's code (/var/task) and the layer's `python` directory (/opt/python)."""

    function: Path
    layer: Path

    @classmethod
    def in_build_dir(cls, build_dir: Path) -> BuiltArtifact:
        return cls(build_dir / "TaggerFunction", build_dir / "DependenciesLayer" / "python")


def run_or_raise(command: Sequence[str], what: str, **options: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its text output; a non-zero exit raises with the end of that output."""
    done = subprocess.run(command, capture_output=True, text=True, check=False, **options)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def build_host(directory: Path, timeout_seconds: float = 600) -> BuiltArtifact:
    """`make build-host` into `directory` (its own build and cache directories); raises with make's output."""
    command = ["make", "--no-print-directory", "-C", str(REPO_ROOT), "build-host", f"HOST_BUILD_DIR={directory}"]
    run_or_raise(command, "make build-host", timeout=timeout_seconds)
    return BuiltArtifact.in_build_dir(directory / "build")


def runtime_packages(directory: Path) -> Path:
    """A directory holding only what the runtime provides (links to this interpreter's copies): /var/runtime."""
    for name in RUNTIME_PROVIDED:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{name} is not installed here: it stands in for the runtime's copy")
        source = Path(spec.origin)
        source = source.parent if source.name == "__init__.py" else source
        _link(directory / source.name, source)
        if source.is_file():  # a single-module distribution (six): its bytecode lives beside it, in __pycache__
            for cached in (source.parent / "__pycache__").glob(f"{source.stem}.*.pyc"):
                _link(directory / "__pycache__" / cached.name, cached)
    return directory


def _link(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(target, target_is_directory=target.is_dir())


def run_probe(
    python: str,
    artifact: BuiltArtifact,
    runtime: Path,
    arguments: Sequence[str],
    env: Mapping[str, str],
    timeout_seconds: float = 120,
) -> dict[str, Any]:
    """`probe.py ARGUMENTS` in a fresh isolated interpreter; its JSON result (the function's logs are dropped)."""
    with tempfile.TemporaryDirectory(prefix="artifact-probe-") as scratch:
        output = Path(scratch) / "result.json"
        paths = [
            f"--{name}={path.absolute()}"
            for name, path in (("function", artifact.function), ("layer", artifact.layer), ("runtime", runtime))
        ]
        run_or_raise(
            [python, "-I", "-S", "-B", str(PROBE), *paths, "--output", str(output), *arguments],
            "the probe",
            env=dict(env),
            cwd=scratch,
            timeout=timeout_seconds,
        )
        result: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    return result
