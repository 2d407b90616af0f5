"""Run one method of cases 1-3 once in this process and print its peak memory as JSON.

Usage: ``python _memprobe.py CASE (list | INDEX) [--quick]``. Called by ``case_memory``.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

CASES = ("hvp", "sharpness", "tracking")
TRACK_STEPS, TRACK_EVERY = 30, 10  # the peak does not grow with the number of steps
# Quick mode probes fewer peers (each probe is a fresh interpreter importing PyTorch).
QUICK_SKIP = (
    "torch.func jvp(grad)",
    "is_grads_batched",
    "ARPACK on eosfast HVP",
    "deflated power",
    "ARPACK cold",
    "torch GD + pyhessian",
)


def status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def entries(case: str, quick: bool):
    """(setting, [(method, is_eosfast, fn)]) with the data already built."""
    setting, listed = _entries(case, quick)
    if quick:
        listed = [e for e in listed if not any(s in e[0] for s in QUICK_SKIP)]
    return setting, listed


def _entries(case: str, quick: bool):
    from _harness import Context

    ctx = Context(quick=quick, nthreads=0, min_time=0.0)
    if case == "hvp":
        return _hvp_entries(quick)
    if case == "sharpness":
        import case_sharpness as cs
        from _models import init_params, make_data

        spec = cs.spec_for(ctx)
        X, Y = make_data(spec)
        x = init_params(spec)
        listed = cs.entries(ctx, spec, X, Y, x, 1, peers=True)
        return f"top-1 {spec.label}", listed
    if case == "tracking":
        import case_tracking as ct
        from _models import init_params, make_data
        from case_sharpness import power_iterations as cs_power_iterations

        spec = ct.spec_for(ctx)
        X, Y = make_data(spec)
        x0 = init_params(spec)
        lr = ct.learning_rate(spec, X, Y, x0)
        iters = cs_power_iterations(ctx)
        listed = ct.entries(spec, X, Y, x0, lr, TRACK_STEPS, TRACK_EVERY, True, iters)
        listed = [(m, e, fn) for m, e, p, fn in listed if p]
        return f"{TRACK_STEPS} steps every {TRACK_EVERY} {spec.label}", listed
    raise ValueError(f"unknown case {case!r}; one of {CASES}")


def _hvp_entries(quick: bool):
    from _models import FULL_SIZES, QUICK_SIZES, eosfast_mlp, init_params, make_data
    from _peers import TorchHVP
    from case_hvp import BLOCK

    spec = QUICK_SIZES["1e5"] if quick else FULL_SIZES["1e6"]
    X, Y = make_data(spec)
    x = init_params(spec)
    rng = np.random.default_rng(1)
    v = rng.standard_normal(spec.params)
    V = np.asfortranarray(rng.standard_normal((spec.params, BLOCK)))

    def torch_call(method, block):
        th = TorchHVP(spec, x, X, Y, "f64")
        arg = th.torch.as_tensor(np.ascontiguousarray(V.T) if block else v)
        return getattr(th, method)(arg)

    listed = [
        ("eosfast hvp(x, v)", True, lambda: eosfast_mlp(spec, X, Y).hvp(x, v)),
        (f"eosfast hvp(x, V[:, :{BLOCK}])", True, lambda: eosfast_mlp(spec, X, Y).hvp(x, V)),
        ("torch double-backward (f64)", False, lambda: torch_call("double_backward", False)),
        ("torch.func jvp(grad) (f64)", False, lambda: torch_call("forward_over_reverse", False)),
        (
            f"torch is_grads_batched m={BLOCK} (f64)",
            False,
            lambda: torch_call("reused_block", True),
        ),
        (f"torch.func vmap m={BLOCK} (f64)", False, lambda: torch_call("func_block", True)),
    ]
    return spec.label, listed


def main(argv: list[str]) -> None:
    import eosfast  # noqa: F401  (imports count towards the baseline, not the method)

    case, which = argv[0], argv[1]
    setting, listed = entries(case, "--quick" in argv)
    if which == "list":
        print(json.dumps({"setting": setting, "entries": [(m, e) for m, e, _ in listed]}))
        return
    method, eos, fn = listed[int(which)]
    if not eos:
        import torch  # noqa: F401  (the peers' import counts towards the baseline)

    baseline = status_kib("VmRSS")
    exact = reset_peak()
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    peak = status_kib("VmHWM")
    out = {
        "method": method,
        "setting": setting,
        "seconds": seconds,
        "baseline_MiB": baseline / 1024,
        "peak_MiB": (peak - baseline) / 1024,
    }
    if not exact:
        out["note"] = "peak-RSS reset unavailable: the peak may include setup"
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
