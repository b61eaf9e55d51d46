"""Which Python the project's tools run on: the Lambda runtime's where the machine has it.

Prints two words for the Makefile: the interpreter for the virtual environments (the runtime's Python,
else the newest Python >= 3.11 found) and the runtime's Python itself (`-` when the machine has none).
Each version is looked for on PATH (`python3.N`) and among pyenv's installed versions. pyenv's shims are
skipped: they answer only for the selected version, and slowly; the real executable is what is printed,
so it works with no pyenv version selected. Standard library only: it runs before any venv exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

RUNTIME = (3, 13)  # template.yaml's `Runtime: python3.13`
MINIMUM = (3, 11)
NEWEST_MINOR = 20
_PROBE = "import sys; print('%d.%d' % sys.version_info[:2], sys.executable)"


def _pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def _candidates(version: tuple[int, int]) -> list[str]:
    """Executables that may be this Python: on PATH (without pyenv's shims), then pyenv's versions."""
    name = "python{}.{}".format(*version)
    shims = str(_pyenv_root() / "shims")
    path = os.pathsep.join(entry for entry in os.environ.get("PATH", "").split(os.pathsep) if entry != shims)
    found = [on_path] if (on_path := shutil.which(name, path=path)) else []
    pattern = "versions/{}.{}.*/bin/{}".format(*version, name)
    return found + sorted(str(candidate) for candidate in _pyenv_root().glob(pattern))


def find(version: tuple[int, int]) -> str | None:
    """The real executable of a working Python of this version, or None."""
    wanted = "{}.{}".format(*version)
    for candidate in _candidates(version):
        try:
            done = subprocess.run(  # noqa: S603 - an interpreter found on PATH or in pyenv
                [candidate, "-I", "-c", _PROBE], capture_output=True, text=True, timeout=20, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        words = done.stdout.split(maxsplit=1)
        if done.returncode == 0 and len(words) == 2 and words[0] == wanted:
            return words[1].strip()
    return None


def runtime_python() -> str | None:
    """The runtime's Python: `RUNTIME_PYTHON` as the Makefile exports it (`-`: none), else looked for here."""
    exported = os.environ.get("RUNTIME_PYTHON")
    if exported is not None:
        return None if exported in {"", "-"} else exported
    return find(RUNTIME)


def choose() -> tuple[str | None, str | None]:
    """(the venvs' Python, the runtime's Python): the runtime's when present, else the newest >= MINIMUM."""
    if runtime := find(RUNTIME):
        return runtime, runtime
    for minor in range(NEWEST_MINOR, MINIMUM[1] - 1, -1):
        if (MINIMUM[0], minor) != RUNTIME and (newest := find((MINIMUM[0], minor))):
            return newest, None
    return None, None


def main() -> int:
    venv_python, runtime = choose()
    if venv_python is None:
        print("no Python >= {}.{} found on PATH or in pyenv".format(*MINIMUM), file=sys.stderr)
        return 1
    print(venv_python, runtime or "-")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
