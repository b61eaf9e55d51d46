"""The PNG: median wall time of a batch against batch size, ours and the baseline, per latency and mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: write files only
import matplotlib.pyplot as plt

MODE_COLOURS = {"replace": "tab:blue", "merge": "tab:orange"}


def draw(rows: list[dict[str, Any]], path: Path) -> None:
    latencies = sorted({int(row["latency_ms"]) for row in rows})
    figure, axes = plt.subplots(1, len(latencies), figsize=(5.4 * len(latencies), 4.8), squeeze=False)
    for axis, latency in zip(axes[0], latencies, strict=True):
        at_latency = [row for row in rows if row["latency_ms"] == latency]
        for mode, colour in MODE_COLOURS.items():
            default = sorted(
                (row for row in at_latency if row["mode"] == mode and row["max_concurrency"] == 10),
                key=lambda row: int(row["batch_size"]),
            )
            _line(axis, default, "ours", colour, "-", "o", f"ours {mode} (MAX_CONCURRENCY 10)")
            _line(axis, default, "baseline", colour, "--", "s", f"baseline {mode}")
            wide = [row for row in at_latency if row["mode"] == mode and row["max_concurrency"] == 25]
            _line(axis, wide, "ours", colour, "none", "^", f"ours {mode} (MAX_CONCURRENCY 25)")
        if latency > 0:
            axis.axhline(latency / 1000, color="grey", linestyle=":", linewidth=1, label="one API latency")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xticks([1, 10, 100], labels=["1", "10", "100"])
        axis.set_xlabel("records in the batch")
        axis.set_ylabel("wall time of the batch, s (median)")
        axis.set_title(f"API latency {latency} ms" + (" (the local stack's floor)" if latency == 0 else ""))
        axis.grid(True, which="both", alpha=0.3)
    legend: dict[str, Any] = {}
    for axis in axes[0]:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    figure.legend(list(legend.values()), list(legend), loc="lower center", ncol=4, fontsize="small")
    figure.suptitle("completion-tagger: one batch, ours vs the straightforward baseline")
    figure.tight_layout(rect=(0, 0.12, 1, 1))
    figure.savefig(path, dpi=110, format="png")
    plt.close(figure)


def _line(axis: Any, rows: list[dict[str, Any]], side: str, colour: str, style: str, marker: str, label: str) -> None:
    points = [(row["batch_size"], row[side]["wall_median_s"]) for row in rows if row.get(side)]
    if points:
        xs, ys = zip(*points, strict=True)
        axis.plot(xs, ys, color=colour, linestyle=style, marker=marker, label=label)
