"""Cost of the MLP kernels: HVP vs gradient, block HVPs vs single HVPs, GFLOP/s.

    python benchmarks/bench_kernels.py            # 1e4 .. 1e7 parameters (a few minutes)
    python benchmarks/bench_kernels.py --quick    # small sizes only (< 30 s)
    python benchmarks/bench_kernels.py --threads 1 --cpu-time   # robust on a busy machine

Networks: d -> w -> w -> 10, tanh, MSE, n samples. FLOP counts are the matrix
products of the algorithms (2 flops per multiply-add), with S = sum over layers
of out * in and S' the same sum without the first layer:
    gradient                      n (2 S + S')        x 2
    HVP (forward recomputed)      n (3 S + 5 S')      x 2
    HVP (Hessian operator cache)  n (2 S + 4 S')      x 2
    block of m (one forward)      n (S + S' + m (2 S + 4 S')) x 2
"""

from __future__ import annotations

import argparse
import time

import eosfast
import numpy as np
from eosfast.problems import MLP

SIZES = {  # name: (d, width, n)
    "1e4": (64, 64, 2048),
    "1e5": (64, 256, 2048),
    "1e6": (64, 900, 1024),
    "1e7": (64, 3000, 256),
}
QUICK = {"1e4": (64, 64, 1024), "1e5": (64, 256, 512)}


CLOCK = time.perf_counter


def best_time(fn, repeats):
    best = np.inf
    for _ in range(repeats):
        t0 = CLOCK()
        fn()
        best = min(best, CLOCK() - t0)
    return best


def flops(sizes, n):
    S = sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))
    S1 = S - sizes[0] * sizes[1]
    unit = 2.0 * n
    return {
        "grad": unit * (2 * S + S1),
        "hvp": unit * (3 * S + 5 * S1),
        "hvp_cached": unit * (2 * S + 4 * S1),
        "block": lambda m: unit * (S + S1 + m * (2 * S + 4 * S1)),
    }


def bench(name, d, w, n, m, repeats):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, 10))
    mlp = MLP(X, Y, hidden=(w, w), activation="tanh", loss="mse", hessian_cache_mb=4096)
    x = mlp.init(0)
    V = rng.standard_normal((mlp.dim, m))
    v = V[:, 0].copy()
    f = flops(mlp.layer_sizes, n)
    t_grad = best_time(lambda: mlp.grad(x), repeats)
    t_hvp = best_time(lambda: mlp.hvp(x, v), repeats)
    t_block = best_time(lambda: mlp.hvp(x, V), max(1, repeats - 1))
    H = mlp.hessian(x)
    t_op = best_time(lambda: H @ v, repeats)
    t_op_block = best_time(lambda: H @ V, max(1, repeats - 1))
    return {
        "name": name,
        "params": mlp.dim,
        "n": n,
        "grad_s": t_grad,
        "hvp_s": t_hvp,
        "time_ratio": t_hvp / t_grad,
        "flop_ratio": f["hvp"] / f["grad"],
        "block_speedup": m * t_hvp / t_block,
        "op_block_speedup": m * t_op / t_op_block,
        "gflops_grad": f["grad"] / t_grad / 1e9,
        "gflops_hvp": f["hvp"] / t_hvp / 1e9,
        "gflops_block": f["block"](m) / t_block / 1e9,
        "op_ratio": t_op / t_grad,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only (< 30 s)")
    parser.add_argument("--threads", type=int, default=None, help="eosfast threads (default all)")
    parser.add_argument("--sizes", nargs="*", choices=sorted(SIZES), help="subset of sizes")
    parser.add_argument("-m", type=int, default=8, help="block size (default 8)")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with the process CPU clock (all threads summed) instead of the wall clock",
    )
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.cpu_time else time.perf_counter
    eosfast.set_num_threads(args.threads)
    table = QUICK if args.quick else SIZES
    names = args.sizes or list(table)
    info = eosfast.info()
    print(
        f"eosfast {info['version']} variant={info['variant']} simd={info['simd']} "
        f"threads={eosfast.get_num_threads()} clock={'cpu' if args.cpu_time else 'wall'}"
    )
    head = (
        f"{'size':>5} {'params':>9} {'n':>5} {'grad s':>8} {'hvp s':>8} {'hvp/grad':>8} "
        f"{'flops':>6} {'op/grad':>8} {'block x':>8} {'opblk x':>8} "
        f"{'GF/s g':>7} {'GF/s h':>7} {'GF/s b':>7}"
    )
    print(head)
    for name in names:
        d, w, n = table[name]
        repeats = 1 if name == "1e7" else 3
        r = bench(name, d, w, n, args.m, repeats)
        print(
            f"{r['name']:>5} {r['params']:>9} {r['n']:>5} {r['grad_s']:>8.4f} {r['hvp_s']:>8.4f} "
            f"{r['time_ratio']:>8.2f} {r['flop_ratio']:>6.2f} {r['op_ratio']:>8.2f} "
            f"{r['block_speedup']:>8.2f} {r['op_block_speedup']:>8.2f} "
            f"{r['gflops_grad']:>7.1f} {r['gflops_hvp']:>7.1f} {r['gflops_block']:>7.1f}",
            flush=True,
        )
    print(
        f"hvp/grad: time of one HVP (forward recomputed) over one gradient; flops: the same in "
        f"FLOPs; op/grad: one product of hessian(x) (cached forward) over one gradient;\n"
        f"block x: time of {args.m} single hvp calls over one block hvp of {args.m}; opblk x: "
        f"the same through hessian(x); GF/s: gradient, single HVP, block HVP."
    )


if __name__ == "__main__":
    main()
