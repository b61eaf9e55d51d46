"""What the bench ran on: CPU model, cores, RAM, OS and Python (no paths, no host names)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def _first(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1].strip().strip('"')
    except OSError:
        return None
    return None


def describe() -> dict[str, Any]:
    memory_kb = _first("/proc/meminfo", "MemTotal")
    ram_gb = int(memory_kb.split()[0]) / 1024 / 1024 if memory_kb else 0.0
    os_name = _first("/etc/os-release", "PRETTY_NAME=") or platform.system()
    return {
        "cpu": _first("/proc/cpuinfo", "model name") or platform.processor() or platform.machine(),
        "architecture": platform.machine(),
        "cores": os.cpu_count() or 0,
        "ram_gb": ram_gb,
        "os": f"{os_name} (kernel {platform.release()})",
        "python": platform.python_version(),
    }
