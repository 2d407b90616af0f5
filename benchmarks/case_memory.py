"""Case 6: peak memory of cases 1-3, each method in its own subprocess.

tracemalloc cannot see C++ or PyTorch allocations, so each method runs in a fresh
interpreter (``_memprobe.py``) that builds the data, resets the kernel's peak-RSS counter
(``/proc/self/clear_refs``), runs the method once (problem construction included) and
reports ``VmHWM - VmRSS`` before the call: the memory the method itself added at its peak.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from _harness import Context, Row, failed

CASE = "6-memory"
PROBE = Path(__file__).with_name("_memprobe.py")


def run(ctx: Context, nthreads: int | None = None) -> list[Row]:
    import _memprobe

    rows: list[Row] = []
    for case in _memprobe.CASES:
        listing = _probe(ctx, case, None)
        for index, (method, eos) in enumerate(listing["entries"]):
            try:
                out = _probe(ctx, case, index)
            except RuntimeError as exc:  # reported in the table, not hidden
                rows.append(failed(CASE, f"{case}: {listing['setting']}", method, exc, eos))
                continue
            metrics = {"peak_MiB": out["peak_MiB"], "baseline_MiB": out["baseline_MiB"]}
            rows.append(
                Row(
                    CASE,
                    f"{case}: {out['setting']}",
                    method,
                    out["seconds"],
                    eos,
                    metrics=metrics,
                    note=out.get("note", ""),
                )
            )
    return rows


def _probe(ctx: Context, case: str, index):
    cmd = [sys.executable, str(PROBE), case, "list" if index is None else str(index)]
    if ctx.quick:
        cmd.append("--quick")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"memory probe {case} {index} failed: {last[0]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
