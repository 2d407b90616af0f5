"""Case 5: thread scaling from 1 thread to all cores for cases 1 (HVP) and 2 (sharpness).

Every method runs at 1 thread and at all cores in the same process (eosfast, PyTorch and
the BLAS limited together); each all-cores row carries ``scaling`` = t(1) / t(all).
"""

from __future__ import annotations

import case_hvp
import case_sharpness
from _harness import Context, Row
from _models import FULL_SIZES, QUICK_SIZES

CASE = "5-threads"


def run(ctx: Context, nthreads: int | None = None) -> list[Row]:
    specs = [QUICK_SIZES["1e5"]] if ctx.quick else [FULL_SIZES["1e5"], FULL_SIZES["1e6"]]
    counts = sorted({1, ctx.nthreads})
    rows: list[Row] = []
    for n in counts:
        rows += case_hvp.run(ctx, n, specs, CASE, precisions=("f64",))
        rows += case_sharpness.run(ctx, n, CASE, peers=False)
    return with_scaling(rows, counts)


def with_scaling(rows: list[Row], counts: list[int]) -> list[Row]:
    if len(counts) < 2:
        return rows
    lo, hi = f"threads={counts[0]}", f"threads={counts[-1]}"
    single = {(r.setting.replace(lo, ""), r.method): r.seconds for r in rows if lo in r.setting}
    for r in rows:
        if hi in r.setting:
            t1 = single.get((r.setting.replace(hi, ""), r.method))
            if t1 is not None:
                r.metrics["scaling"] = t1 / r.seconds
    return rows
