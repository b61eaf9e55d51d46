"""Cold-start probe of the development venv, run as a fresh process; prints JSON (last line).

Ours and the bare yardstick are measured on the built artifact (`tools/artifact/probe.py`); what runs here is
what the artifact cannot hold:
- `baseline`: import `bench.baseline.app` (Powertools, the openai SDK, its clients);
- `compile`: import `tagger.app`, then time compiling the source of every installed module it loaded: what
  each cold start would pay if the layer were deployed without its bytecode.
"""

from __future__ import annotations

import importlib
import json
import sys
import time

# Module names only: importing `bench.functions` here would load `typing` before the clock starts.
HANDLER_MODULES = {"baseline": "bench.baseline.app", "compile": "tagger.app"}


def compile_times() -> dict[str, float]:
    """Milliseconds to compile the source of each loaded installed package, by top-level name."""
    by_top: dict[str, float] = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path or "site-packages" not in path or not path.endswith(".py"):
            continue
        with open(path, "rb") as source:
            text = source.read()
        started = time.perf_counter()
        compile(text, path, "exec")
        top = name.split(".")[0]
        by_top[top] = by_top.get(top, 0.0) + (time.perf_counter() - started) * 1000
    return by_top


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in HANDLER_MODULES:
        print(f"usage: python -m bench.init_probe {{{','.join(HANDLER_MODULES)}}}", file=sys.stderr)
        return 2
    modules_before = len(sys.modules)
    started, cpu_started = time.perf_counter(), time.process_time()
    importlib.import_module(HANDLER_MODULES[argv[1]])
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    modules_imported = len(sys.modules) - modules_before
    from bench.rss import peak_rss_kb  # noqa: PLC0415 - only once the clock has stopped

    result: dict[str, object] = {
        "probe": argv[1],
        "init_seconds": seconds,
        "init_cpu_seconds": cpu_seconds,
        "modules_imported": modules_imported,
        "openai_sdk_loaded": "openai" in sys.modules,
        "xray_sdk_loaded": "aws_xray_sdk" in sys.modules,
        "rss_kb": peak_rss_kb(),
    }
    if argv[1] == "compile":
        result["compile_ms_by_top"] = compile_times()
    print("\n" + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
