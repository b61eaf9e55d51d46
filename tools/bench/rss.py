"""Peak resident memory of this process.

`VmHWM` from /proc/self/status, the high-water mark of this process' own address space. Not
`getrusage().ru_maxrss`: Linux keeps that across `execve`, so a process started by a big parent (the bench,
with moto loaded) would report the parent's peak instead of its own.
"""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_kb() -> int:
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
