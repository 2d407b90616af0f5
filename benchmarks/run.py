"""eosfast against its peers, side by side: ``python benchmarks/run.py [--quick] [--only NAME]``.

Writes ``<out>/<mode>-<timestamp>.md`` (tables) and ``.json`` (machine information, every
measurement, the ratios and the issue's targets). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import case_central  # noqa: E402
import case_flow  # noqa: E402
import case_hvp  # noqa: E402
import case_memory  # noqa: E402
import case_mpi  # noqa: E402
import case_overhead  # noqa: E402
import case_sharpness  # noqa: E402
import case_threads  # noqa: E402
import case_tracking  # noqa: E402
from _harness import Context, all_cores, failed, use_clock  # noqa: E402
from _machine import gemm_rate, machine_info  # noqa: E402
from _report import markdown, summary, targets  # noqa: E402

CASES = {
    "hvp": case_hvp,
    "sharpness": case_sharpness,
    "tracking": case_tracking,
    "overhead": case_overhead,
    "threads": case_threads,
    "memory": case_memory,
    "flow": case_flow,
    "central": case_central,
    "mpi": case_mpi,
}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes only (CI: < 2 minutes)")
    p.add_argument(
        "--only",
        action="append",
        choices=sorted(CASES),
        metavar="NAME",
        help=f"run only this case (repeatable): {', '.join(CASES)}",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "results",
        help="folder for the .md and .json results (default: benchmarks/results)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="threads of every library (default: all cores); case 5 compares 1 with N",
    )
    p.add_argument(
        "--cpu-time",
        action="store_true",
        help="time by process CPU time instead of wall time (for a busy machine; see README)",
    )
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    use_clock("cpu" if args.cpu_time else "wall")
    names = args.only or list(CASES)
    nthreads = args.threads or all_cores()
    start = time.perf_counter()
    info = machine_info()
    info["clock"] = "process CPU time" if args.cpu_time else "wall time"
    min_time = 0.1 if args.quick else 0.5
    gemm_n = 1000 if args.quick else 2000
    info["gemm_rate"] = {n: gemm_rate(gemm_n, n, min_time) for n in sorted({1, nthreads})}
    ctx = Context(
        quick=args.quick, nthreads=nthreads, min_time=min_time, gemm_rate=info["gemm_rate"]
    )
    rows, timings = [], {}
    for name in names:
        t0 = time.perf_counter()
        print(f"[{time.perf_counter() - start:7.1f} s] case {name} ...", flush=True)
        try:
            rows += CASES[name].run(ctx)
        except Exception as exc:  # one broken case must not hide the others
            traceback.print_exc()
            rows.append(failed(name, "case", "whole case", exc))
        timings[name] = time.perf_counter() - t0
    info["case_seconds"] = timings
    info["total_seconds"] = time.perf_counter() - start
    info["load_average_end"] = list(__import__("os").getloadavg())
    summ = summary(rows)
    targ = targets(rows, summ)
    mode = "quick" if args.quick else "full"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    md_path = args.out / f"{mode}-{stamp}.md"
    json_path = args.out / f"{mode}-{stamp}.json"
    md_path.write_text(markdown(info, rows, summ, targ, f"eosfast benchmarks ({mode}, {stamp})"))
    json_path.write_text(
        json.dumps(
            {
                "mode": mode,
                "clock": "cpu" if args.cpu_time else "wall",
                "cases": names,
                "machine": info,
                "rows": [r.as_dict() for r in rows],
                "summary": summ,
                "targets": targ,
            },
            indent=1,
            default=_jsonable,
        )
    )
    print(md_path.read_text())
    print(f"wrote {md_path} and {json_path} in {info['total_seconds']:.1f} s")
    return 0


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
