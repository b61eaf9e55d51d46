"""`make complexity`: no new function of the product's code above a cyclomatic complexity of 10.

radon measures every function, method and closure of functions/ and completion_tagger/ (`radon cc --json`).
Those above `MAX_COMPLEXITY` today are listed in `complexity-baseline.json` beside this file, each with its
complexity then: such a block may stay as complex as it was, not grow; any other block above the limit
fails the gate. Classes are not measured as a whole: their methods are, one by one. A block is named by its
file and qualified name, so moving or renaming one makes it new: `--write-baseline` records the blocks
above the limit now as the baseline, whose diff then shows what changed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

MAX_COMPLEXITY = 10  # radon's rank B at most: simple to moderately complex blocks
PRODUCT_PATHS = ("functions", "completion_tagger")
REPO_ROOT = Path(__file__).resolve().parents[1]
BASELINE_PATH = Path(__file__).resolve().with_name("complexity-baseline.json")


def measure() -> dict[str, Any]:
    """radon's report (`radon cc --json`) on the product's code, its paths relative to the repository."""
    done = subprocess.run(  # noqa: S603 - radon from this venv, on the product's own folders
        [sys.executable, "-m", "radon", "cc", "--json", *PRODUCT_PATHS],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def complexities(report: Mapping[str, Any]) -> dict[str, int]:
    """`path:qualified.name` -> complexity of every function, method and closure in a radon report."""
    found: dict[str, int] = {}
    for path, blocks in sorted(report.items()):
        if isinstance(blocks, dict):  # radon reports a file it cannot parse as {"error": ...}
            raise ValueError(f"radon could not read {path}: {blocks.get('error')}")
        for block in blocks:
            if block["type"] == "class":
                continue
            owner = f"{block['classname']}." if block.get("classname") else ""
            for name, complexity in _with_closures(owner + block["name"], block):
                found[f"{path}:{name}"] = complexity
    return found


def _with_closures(name: str, block: Mapping[str, Any]) -> Iterator[tuple[str, int]]:
    yield name, int(block["complexity"])
    for closure in block.get("closures", []):
        yield from _with_closures(f"{name}.{closure['name']}", closure)


def over_limit(measured: Mapping[str, int], limit: int = MAX_COMPLEXITY) -> dict[str, int]:
    return {name: complexity for name, complexity in measured.items() if complexity > limit}


def violations(measured: Mapping[str, int], baseline: Mapping[str, int], limit: int = MAX_COMPLEXITY) -> list[str]:
    """One line per block above the limit that the baseline does not allow: new, or more complex than then."""
    problems = []
    for name, complexity in sorted(over_limit(measured, limit).items()):
        allowed = baseline.get(name)
        if allowed is None:
            problems.append(f"{name}: complexity {complexity}, above {limit} and not in the baseline")
        elif complexity > allowed:
            problems.append(f"{name}: complexity {complexity}, up from {allowed} in the baseline")
    return problems


def stale(measured: Mapping[str, int], baseline: Mapping[str, int], limit: int = MAX_COMPLEXITY) -> list[str]:
    """Baseline entries no longer above the limit (simplified, renamed or gone): they can be dropped."""
    return sorted(name for name in baseline if measured.get(name, 0) <= limit)


def read_baseline(path: Path = BASELINE_PATH) -> dict[str, int]:
    baseline: dict[str, int] = json.loads(path.read_text(encoding="utf-8"))
    return baseline


def write_baseline(measured: Mapping[str, int], path: Path = BASELINE_PATH) -> None:
    path.write_text(json.dumps(over_limit(measured), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m complexity_gate", description="No new block of the product's code above the complexity limit."
    )
    parser.add_argument(
        "--write-baseline", action="store_true", help="record the blocks above the limit now as the baseline"
    )
    arguments = parser.parse_args(argv)
    measured = complexities(measure())
    if arguments.write_baseline:
        write_baseline(measured)
        print(f"complexity: {len(over_limit(measured))} blocks above {MAX_COMPLEXITY} written to {BASELINE_PATH.name}")
        return 0
    baseline = read_baseline()
    for name in stale(measured, baseline):
        print(f"complexity: {name} is no longer above {MAX_COMPLEXITY}: drop it from the baseline", file=sys.stderr)
    problems = violations(measured, baseline)
    for problem in problems:
        print(f"complexity: {problem}", file=sys.stderr)
    if problems:
        print(
            "complexity: split the block up; a block only moved or renamed: --write-baseline (docs/development.md)",
            file=sys.stderr,
        )
        return 1
    print(f"complexity: {len(measured)} blocks, none above {MAX_COMPLEXITY} beyond the baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
