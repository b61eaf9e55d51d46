"""The complexity gate's reading of radon's report and its comparison with the baseline (`make complexity`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from complexity_gate import complexities, read_baseline, stale, violations, write_baseline


def block(kind: str, name: str, complexity: int, **more: Any) -> dict[str, Any]:
    return {"type": kind, "name": name, "complexity": complexity, **more}


REPORT = {
    "functions/tagger/logic/a.py": [
        block("method", "handle", 12, classname="Processor"),
        block("class", "Processor", 30, methods=[{"name": "handle"}]),
        block("function", "send", 4, closures=[block("function", "retry", 11)]),
    ],
    "completion_tagger/b.py": [block("function", "send", 23)],
}


def test_functions_methods_and_closures_are_named_by_file_and_qualified_name_and_classes_left_out() -> None:
    assert complexities(REPORT) == {
        "functions/tagger/logic/a.py:Processor.handle": 12,
        "functions/tagger/logic/a.py:send": 4,
        "functions/tagger/logic/a.py:send.retry": 11,
        "completion_tagger/b.py:send": 23,
    }


def test_a_file_radon_cannot_parse_stops_the_gate() -> None:
    with pytest.raises(ValueError, match=r"broken\.py"):
        complexities({"broken.py": {"error": "invalid syntax"}})


def test_blocks_above_the_limit_pass_only_as_complex_as_the_baseline_has_them() -> None:
    measured = {"a.py:same": 12, "a.py:simpler": 11, "a.py:grown": 15, "a.py:new": 11, "a.py:small": 10}
    baseline = {"a.py:same": 12, "a.py:simpler": 14, "a.py:grown": 13}

    assert violations(measured, baseline, limit=10) == [
        "a.py:grown: complexity 15, up from 13 in the baseline",
        "a.py:new: complexity 11, above 10 and not in the baseline",
    ]


def test_baseline_entries_no_longer_above_the_limit_are_stale() -> None:
    measured = {"a.py:fixed": 9, "a.py:kept": 12}
    assert stale(measured, {"a.py:fixed": 12, "a.py:kept": 12, "a.py:gone": 20}, limit=10) == [
        "a.py:fixed",
        "a.py:gone",
    ]


def test_the_written_baseline_holds_the_blocks_above_the_limit_and_passes(tmp_path: Path) -> None:
    measured = complexities(REPORT)
    path = tmp_path / "baseline.json"

    write_baseline(measured, path)

    assert read_baseline(path) == {
        "functions/tagger/logic/a.py:Processor.handle": 12,
        "completion_tagger/b.py:send": 23,
        "functions/tagger/logic/a.py:send.retry": 11,
    }
    assert violations(measured, read_baseline(path)) == []
