"""Smoke test of an installed eosfast, run by tools/build_wheel.sh from a folder
outside the source tree: import, info(), a built-in problem's HVP, a sharpness
(eosfast.sharpness) and a short run (eosfast.run), each checked against numpy.

    python -I smoke_test.py --threads yes|no [--variants both|auto]

``both``: a wheel, which holds every kernel variant; ``auto``: a source build, which holds only
the variant of the CPU it was built on.
"""

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys

import eosfast
import numpy as np


def check_import(source_tree):
    location = os.path.realpath(eosfast.__file__)
    assert not location.startswith(os.path.realpath(source_tree) + os.sep), location
    assert eosfast.__version__ == importlib.metadata.version("eosfast"), eosfast.__version__
    print(f"eosfast {eosfast.__version__} from {os.path.dirname(location)}")


def check_info(expect_threads, variants):
    info = eosfast.info()
    print(json.dumps(info, indent=2))
    backend = "pool" if expect_threads else "serial"
    assert info["threads_backend"] == backend, info["threads_backend"]
    x86 = platform.machine() in ("x86_64", "AMD64")
    if variants == "both":
        expected = ["avx2", "generic"] if x86 else ["generic"]
    else:
        expected = ["avx2"] if x86 and info["cpu_avx2_fma"] else ["generic"]
    assert info["variants_built"] == expected, info["variants_built"]
    for variant in expected:
        if variant == "avx2" and not info["cpu_avx2_fma"]:
            continue
        code = "import eosfast; print(eosfast.info()['variant'])"
        env = {**os.environ, "EOSFAST_VARIANT": variant}
        out = subprocess.run([sys.executable, "-I", "-c", code], env=env, capture_output=True)
        assert out.returncode == 0 and out.stdout.decode().strip() == variant, out.stderr


def check_hvp_and_sharpness(rng):
    n = 40
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    spectrum = np.linspace(0.5, 3.0, n)
    A = (Q * spectrum) @ Q.T
    problem = eosfast.problems.Quadratic(A, rng.standard_normal(n))
    x, V = rng.standard_normal(n), rng.standard_normal((n, 3))
    assert np.allclose(problem.hvp(x, V), A @ V, rtol=0, atol=1e-12)
    dense = np.linalg.eigvalsh(problem.hessian(x).to_dense())[-1]
    sharpness = eosfast.sharpness(problem, x)
    assert abs(sharpness - spectrum[-1]) < 1e-8 and abs(dense - spectrum[-1]) < 1e-10
    print(f"HVP matches A @ V; sharpness {sharpness:.12f} (eigh {dense:.12f}, exact 3)")
    return problem, sharpness


def check_threads(rng, expect_threads):
    n = 1_000_017  # many chunks, enough work for the thread pool to run
    problem = eosfast.problems.Quadratic(rng.uniform(0.5, 2.0, n), rng.standard_normal(n))
    x, V = rng.standard_normal(n), rng.standard_normal((n, 4))
    results = []
    for threads in (1, 2):
        eosfast.set_num_threads(threads)
        results.append((problem.loss_and_grad(x), problem.hvp(x, V)))
    eosfast.set_num_threads(None)
    (l1, g1), h1 = results[0]
    (l2, g2), h2 = results[1]
    assert l1 == l2 and np.array_equal(g1, g2) and np.array_equal(h1, h2)
    cpus = len(os.sched_getaffinity(0))
    quota = eosfast._threads.cgroup_cpu_limit()
    if quota is not None:
        cpus = min(cpus, max(1, int(quota[0])))
    expected_default = cpus if expect_threads else 1
    assert eosfast.get_num_threads() == expected_default, eosfast.get_num_threads()
    print(f"1 and 2 threads bitwise identical; default threads {eosfast.get_num_threads()}")


def check_short_run(problem, sharpness):
    # GD at lr = 1/sharpness (below the threshold 2/sharpness) on a positive-
    # definite quadratic: the loss falls monotonically towards its minimum, and
    # the iterates are numpy's own GD loop.
    A, b = problem.A, problem.b
    minimum = -0.5 * b @ np.linalg.solve(A, b)
    lr, steps = 1.0 / sharpness, 200
    traj = eosfast.run(problem, eosfast.GD(lr), np.zeros(problem.dim), steps, sharpness_every=50)
    x = np.zeros(problem.dim)
    for _ in range(steps):
        x = x - lr * (A @ x - b)
    assert traj.status == "completed" and traj.step == steps, (traj.status, traj.step)
    assert np.allclose(traj.x_final, x, rtol=1e-10, atol=1e-12)
    assert np.all(np.diff(traj.loss) <= 1e-12 * abs(minimum))
    assert traj.loss[-1] - minimum < 1e-6 * abs(minimum), (traj.loss[-1], minimum)
    assert np.allclose(traj.sharpness, sharpness, rtol=1e-6)
    assert np.allclose(traj.threshold, 2.0 / lr)
    print(f"run: {steps} GD steps, loss {traj.loss[-1]:.10f} (minimum {minimum:.10f})")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", choices=["yes", "no"], required=True)
    parser.add_argument("--source-tree", required=True)
    parser.add_argument("--variants", choices=["both", "auto"], default="both")
    args = parser.parse_args()
    expect_threads = args.threads == "yes"
    rng = np.random.default_rng(20240611)
    check_import(args.source_tree)
    check_info(expect_threads, args.variants)
    problem, sharpness = check_hvp_and_sharpness(rng)
    check_threads(rng, expect_threads)
    check_short_run(problem, sharpness)
    print("smoke test passed")


if __name__ == "__main__":
    main()
