"""The script the Makefile asks which Python to build the venvs with, run as the Makefile runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]


def test_the_makefile_gets_the_venv_python_and_the_runtime_python_or_a_dash() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "artifact" / "pythons.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    venv_python, runtime = done.stdout.split()
    version = subprocess.run(
        [venv_python, "-c", "import sys; print(sys.version_info[:2] >= (3, 11))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == "True"
    assert runtime in {"-", venv_python}
