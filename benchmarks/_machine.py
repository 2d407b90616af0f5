"""What machine the numbers come from, and its double-precision GEMM rate."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

import numpy as np
from _harness import measure, threads

PACKAGES = ("numpy", "scipy", "threadpoolctl", "torch", "pyhessian", "hessian-eigenthings")
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "EOSFAST_NUM_THREADS")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return sorted(flags & {"avx", "avx2", "fma", "avx512f", "avx512dq"})
    except OSError:
        pass
    return []


def versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    import eosfast

    out["eosfast"] = eosfast.__version__
    return out


def thread_settings() -> dict:
    import eosfast
    from threadpoolctl import threadpool_info

    out = {"env": {k: os.environ.get(k) for k in THREAD_ENV}}
    out["eosfast"] = eosfast.get_num_threads()
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch"] = torch.get_num_threads()
        out["torch_parallel_info"] = torch.__config__.parallel_info().splitlines()[:8]
    out["threadpools"] = [
        {k: p.get(k) for k in ("user_api", "internal_api", "prefix", "version", "num_threads")}
        for p in threadpool_info()
    ]
    return out


def machine_info() -> dict:
    import eosfast

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "logical_cores": os.cpu_count(),
        "usable_cores": affinity,
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()),
        "versions": versions(),
        "threads": thread_settings(),
        "eosfast_info": eosfast.info(),
    }


def gemm_rate(n: int, nthreads: int, min_time: float) -> float:
    """Double-precision GEMM rate in FLOP/s: numpy's (n x n) @ (n x n), best of repeats."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n))
    b = rng.standard_normal((n, n))
    out = np.empty((n, n))
    with threads(nthreads):
        t = measure(lambda: np.matmul(a, b, out=out), min_time=min_time, max_repeats=50)
    return 2.0 * n**3 / t.best
