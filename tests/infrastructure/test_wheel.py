"""The project's wheel carries the product alone: the function and the producer's program, no tooling."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.infrastructure

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_only_the_function_and_the_program(tmp_path: Path) -> None:
    build = ["wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(tmp_path), str(REPO_ROOT)]
    subprocess.run(
        [sys.executable, "-m", "pip", *build],
        capture_output=True,
        check=True,
        timeout=120,
    )
    [wheel] = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}

    assert {top for top in tops if not top.endswith(".dist-info")} == {"tagger", "completion_tagger"}
