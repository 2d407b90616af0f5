import os
import subprocess
import sys
import threading
import time

import eosfast
import numpy as np
import pytest
import threadpoolctl
from conftest import random_symmetric
from eosfast._threads import cgroup_cpu_limit, default_num_threads
from eosfast.problems import MLP, Quadratic

POOL = eosfast.info()["threads_backend"] == "pool"
needs_pool = pytest.mark.skipif(not POOL, reason="a serial build (EOSFAST_THREADS=OFF)")
# The variables that decide the default, removed so that a test sees only what it sets.
THREAD_ENV = (
    "EOSFAST_NUM_THREADS",
    "OMP_NUM_THREADS",
    "SLURM_CPUS_PER_TASK",
    "EOSFAST_CGROUP_ROOT",
)


def run_python(code, **env):
    full_env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV}
    full_env.update(env)
    out = subprocess.run(
        [sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    # the last line: an editable install may print its rebuild first
    return out.stdout.strip().splitlines()[-1]


def test_info_reports_build():
    facts = eosfast.info()
    assert facts["version"] == eosfast.__version__
    assert facts["variant"] in facts["variants_built"]
    assert facts["num_threads"] == eosfast.get_num_threads()
    assert facts["threads_backend"] in ("pool", "serial")
    assert isinstance(facts["num_threads_source"], str) and facts["num_threads_source"]
    assert facts["default_threads"] >= 1
    if facts["cpu_avx2_fma"] and "avx2" in facts["variants_built"]:
        assert facts["variant"] == "avx2"


def test_variant_can_be_forced():
    if "generic" not in eosfast.info()["variants_built"]:
        pytest.skip("generic variant not built here")
    assert (
        run_python("import eosfast; print(eosfast.info()['variant'])", EOSFAST_VARIANT="generic")
        == "generic"
    )


def test_unknown_variant_is_an_import_error():
    out = subprocess.run(
        [sys.executable, "-c", "import eosfast"],
        env={**os.environ, "EOSFAST_VARIANT": "sse9"},
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0 and "not a kernel variant" in out.stderr


def test_set_and_get_num_threads(restore_threads):
    eosfast.set_num_threads(1)
    assert eosfast.get_num_threads() == 1
    eosfast.set_num_threads(3)
    assert eosfast.get_num_threads() == 3
    assert eosfast.info()["num_threads_source"].startswith("set_num_threads")
    eosfast.set_num_threads(None)
    assert eosfast.get_num_threads() == eosfast.info()["default_threads"]
    assert not eosfast.info()["num_threads_source"].startswith("set_num_threads")
    with pytest.raises(ValueError):
        eosfast.set_num_threads(-1)
    with pytest.raises(TypeError):
        eosfast.set_num_threads(1.5)


def test_environment_variable_sets_threads():
    assert (
        run_python("import eosfast; print(eosfast.get_num_threads())", EOSFAST_NUM_THREADS="3")
        == "3"
    )


def test_threadpoolctl_limits_eosfast(restore_threads):
    eosfast.set_num_threads(2)
    apis = {i["user_api"] for i in threadpoolctl.threadpool_info()}
    assert "eosfast" in apis
    with threadpoolctl.threadpool_limits(limits=1):
        assert eosfast.get_num_threads() == 1
    assert eosfast.get_num_threads() == 2
    with threadpoolctl.threadpool_limits(limits=1, user_api="eosfast"):
        assert eosfast.get_num_threads() == 1


@pytest.mark.parametrize("threads", [2, 3])
def test_bitwise_identical_across_thread_counts(rng, restore_threads, threads):
    n = 20000 + 17  # several vector chunks and a ragged tail
    big = Quadratic(rng.uniform(-1, 2, n), rng.standard_normal(n))
    m = 900
    dense = Quadratic(random_symmetric(rng, m), rng.standard_normal(m))
    x, V = rng.standard_normal(n), rng.standard_normal((n, 3))
    y, W = rng.standard_normal(m), rng.standard_normal((m, 5))

    def evaluate():
        return (
            big.loss_and_grad(x),
            big.hvp(x, V),
            dense.loss_and_grad(y),
            dense.hvp(y, W),
        )

    eosfast.set_num_threads(1)
    reference = evaluate()
    eosfast.set_num_threads(threads)
    result = evaluate()
    assert reference[0][0] == result[0][0] and reference[2][0] == result[2][0]
    for a, b in [
        (reference[0][1], result[0][1]),
        (reference[1], result[1]),
        (reference[2][1], result[2][1]),
        (reference[3], result[3]),
    ]:
        np.testing.assert_array_equal(a, b)


def test_gil_is_released_during_heavy_calls(rng, restore_threads):
    # One core thread: with the spinner below, more would oversubscribe this 2-core machine.
    eosfast.set_num_threads(1)
    n = 2000
    B = rng.standard_normal((n, n))
    q = Quadratic(B + B.T)
    x, V = rng.standard_normal(n), rng.standard_normal((n, 400))

    counter = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            counter[0] += 1

    worker = threading.Thread(target=spin)
    worker.start()
    try:
        time.sleep(0.05)
        c0, t0 = counter[0], time.perf_counter()
        time.sleep(0.1)
        rate = (counter[0] - c0) / (time.perf_counter() - t0)  # spins per second, GIL free
        c0, t0 = counter[0], time.perf_counter()
        q.hvp(x, V)
        elapsed = time.perf_counter() - t0
        progress = counter[0] - c0
    finally:
        stop.set()
        worker.join()
    assert elapsed > 0.05
    # Holding the GIL would allow at most a switch interval (5 ms) of spinning.
    assert progress > 0.3 * rate * elapsed, (progress, rate, elapsed)


@needs_pool
def test_default_honours_the_affinity_mask():
    code = (
        "import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
        "import eosfast; from eosfast import info, get_num_threads as n; "
        "print(n(), '|', info()['num_threads_source'])"
    )
    n, source = run_python(code).split("|")
    assert int(n) == 1 and "sched_getaffinity" in source


@needs_pool
@pytest.mark.skipif(not __import__("shutil").which("taskset"), reason="no taskset")
def test_default_honours_taskset():
    cpu = str(sorted(os.sched_getaffinity(0))[0])
    env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV}
    out = subprocess.run(
        [
            "taskset",
            "-c",
            cpu,
            sys.executable,
            "-c",
            "import eosfast; print(eosfast.get_num_threads())",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "1"


def _fake_v2(root, text):
    root.mkdir(exist_ok=True)
    (root / "cpu.max").write_text(text)
    return str(root)


def _fake_v1(root, quota, period):
    d = root / "cpu,cpuacct"
    d.mkdir(parents=True)
    (d / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (d / "cpu.cfs_period_us").write_text(f"{period}\n")
    return str(root)


@pytest.mark.parametrize(
    ("text", "cpus"), [("100000 100000\n", 1.0), ("150000 100000\n", 1.5), ("max 100000\n", None)]
)
def test_cgroup_v2_quota_is_read(tmp_path, text, cpus):
    limit = cgroup_cpu_limit(_fake_v2(tmp_path / "cg", text), proc_cgroup="0::/\n")
    assert (limit is None) if cpus is None else (limit[0] == cpus and "cgroup v2" in limit[1])


def test_cgroup_v2_nested_quota_takes_the_smallest(tmp_path):
    root = tmp_path / "cg"
    (root / "job" / "step").mkdir(parents=True)
    (root / "cpu.max").write_text("max 100000")
    (root / "job" / "cpu.max").write_text("50000 100000")
    (root / "job" / "step" / "cpu.max").write_text("300000 100000")
    limit = cgroup_cpu_limit(str(root), proc_cgroup="0::/job/step\n")
    assert limit[0] == 0.5 and "job/cpu.max" in limit[1]


@pytest.mark.parametrize(("quota", "cpus"), [(100000, 1.0), (-1, None)])
def test_cgroup_v1_quota_is_read(tmp_path, quota, cpus):
    limit = cgroup_cpu_limit(
        _fake_v1(tmp_path / "cg", quota, 100000), proc_cgroup="4:cpu,cpuacct:/\n"
    )
    assert (limit is None) if cpus is None else (limit[0] == cpus and "cgroup v1" in limit[1])


@needs_pool
def test_default_honours_a_cgroup_quota(tmp_path):
    root = _fake_v2(tmp_path / "cg", "150000 100000\n")  # 1.5 CPUs: one thread
    n, source = default_num_threads(environ={}, cgroup_root=root)
    assert n == 1 and "cgroup v2" in source
    # In a fresh process, through the environment variable that points at the cgroup root.
    code = "import eosfast as e; print(e.get_num_threads(), '|', e.info()['num_threads_source'])"
    n, source = run_python(code, EOSFAST_CGROUP_ROOT=root).split("|")
    assert int(n) == 1 and "cgroup v2" in source
    v1 = _fake_v1(tmp_path / "cg1", 100000, 100000)
    assert default_num_threads(environ={}, cgroup_root=v1)[0] == 1


@needs_pool
def test_environment_order_and_errors(tmp_path):
    root = _fake_v2(tmp_path / "cg", "100000 100000")
    env = {"EOSFAST_NUM_THREADS": "3", "OMP_NUM_THREADS": "5", "SLURM_CPUS_PER_TASK": "7"}
    assert default_num_threads(env, root) == (3, "EOSFAST_NUM_THREADS=3")
    del env["EOSFAST_NUM_THREADS"]
    assert default_num_threads(env, root) == (5, "OMP_NUM_THREADS=5")
    env["OMP_NUM_THREADS"] = "4,2"  # nested levels: the outer one
    assert default_num_threads(env, root)[0] == 4
    del env["OMP_NUM_THREADS"]
    assert default_num_threads(env, root) == (7, "SLURM_CPUS_PER_TASK=7")
    assert default_num_threads({"EOSFAST_NUM_THREADS": "0"}, root)[0] == 1  # 0: automatic
    with pytest.raises(ValueError, match="OMP_NUM_THREADS"):
        default_num_threads({"OMP_NUM_THREADS": "many"}, root)
    with pytest.raises(ValueError, match="EOSFAST_NUM_THREADS"):
        default_num_threads({"EOSFAST_NUM_THREADS": "-2"}, root)


@needs_pool
def test_small_regions_run_serially_and_large_ones_on_the_pool():
    code = """
import numpy as np, eosfast
from eosfast.problems import MLP
eosfast.set_num_threads(2)
rng = np.random.default_rng(0)
small = MLP(rng.standard_normal((40, 5)), rng.standard_normal((40, 2)), hidden=(8,))
small.loss_and_grad(small.init(0)); small.hvp(small.init(0), np.ones((small.dim, 2)))
before = eosfast._core.pool_workers()
big = MLP(rng.standard_normal((500, 64)), rng.standard_normal((500, 10)), hidden=(100, 100))
big.loss_and_grad(big.init(0))
print(before, eosfast._core.pool_workers())
"""
    assert run_python(code).split() == ["0", "1"]


@needs_pool
@pytest.mark.parametrize("threads", [2, 3])
def test_pool_results_bitwise_identical(rng, restore_threads, threads):
    """Sizes large enough that the regions run on the pool (the test above checks the
    small ones stay serial): a long diagonal, a dense HVP, an MLP and eigsh on it."""
    n = 1_000_003
    big = Quadratic(rng.uniform(-1, 2, n), rng.standard_normal(n))
    x, V = rng.standard_normal(n), rng.standard_normal((n, 2))
    m = 700
    dense = Quadratic(random_symmetric(rng, m), rng.standard_normal(m))
    y, W = rng.standard_normal(m), rng.standard_normal((m, 6))
    X = rng.standard_normal((500, 64))
    mlp = MLP(X, rng.standard_normal((500, 10)), hidden=(100, 100), activation="tanh")
    theta = mlp.init(1)
    U = rng.standard_normal((mlp.dim, 4))

    def evaluate():
        return [
            *big.loss_and_grad(x),
            big.hvp(x, V),
            *dense.loss_and_grad(y),
            dense.hvp(y, W),
            *mlp.loss_and_grad(theta),
            mlp.hvp(theta, U),
            *(lambda r: (r.eigenvalues, r.eigenvectors))(
                eosfast.eigsh(mlp.hessian(theta), k=2, seed=0)
            ),
        ]

    eosfast.set_num_threads(1)
    reference = evaluate()
    eosfast.set_num_threads(threads)
    result = evaluate()
    assert eosfast._core.pool_workers() >= 1
    for a, b in zip(reference, result, strict=True):
        np.testing.assert_array_equal(a, b)


@needs_pool
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_pool_works_in_a_forked_child():
    code = """
import os, numpy as np, eosfast
from eosfast.problems import MLP
eosfast.set_num_threads(2)
rng = np.random.default_rng(0)
mlp = MLP(rng.standard_normal((500, 64)), rng.standard_normal((500, 10)), hidden=(100, 100))
x = mlp.init(0)
reference = mlp.grad(x)  # starts the parent's pool
pid = os.fork()
if pid == 0:  # the child has no workers: it must start its own, not wait for the parent's
    g = mlp.grad(x)
    tasks = len(os.listdir("/proc/self/task"))  # this thread and the child's own worker
    os._exit(0 if np.array_equal(g, reference) and tasks == 2 else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""
    assert run_python(code) == "0"


@needs_pool
def test_concurrent_callers_get_the_same_bits(rng, restore_threads):
    """Python threads calling eosfast at once share one pool (a caller that finds it busy
    runs its region serially): every result is still the 1-thread one."""
    X = rng.standard_normal((500, 64))
    mlp = MLP(X, rng.standard_normal((500, 10)), hidden=(100, 100), activation="tanh")
    points = [mlp.init(s) for s in range(4)]
    eosfast.set_num_threads(1)
    reference = [mlp.grad(p) for p in points]
    eosfast.set_num_threads(2)
    results = [None] * len(points)

    def work(i):
        for _ in range(5):
            results[i] = mlp.grad(points[i])

    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(points))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for a, b in zip(reference, results, strict=True):
        np.testing.assert_array_equal(a, b)


def test_cli_info_shows_the_thread_count_and_its_source():
    env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV}
    env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from eosfast.cli import main; sys.exit(main(['info']))",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout[out.stdout.index("{") :]
    facts = __import__("json").loads(text)
    assert facts["num_threads"] == 1 and facts["num_threads_source"] == "OMP_NUM_THREADS=1"
    assert facts["threads_backend"] == eosfast.info()["threads_backend"]


@needs_pool
def test_region_threads_follow_the_work_estimate(restore_threads):
    probe = eosfast._core._parallel_probe
    small = 2 * eosfast._core.min_thread_work - 1  # too little work for a second thread
    eosfast.set_num_threads(2)
    assert probe(64, small) == (1, 64)
    assert probe(1, 1e12) == (1, 1)
    assert probe(0, 1e12) == (0, 0)
    threads_used = max(probe(64, 1e12)[0] for _ in range(20))  # a busy host may starve one
    assert threads_used == 2
    eosfast.set_num_threads(1)
    assert probe(64, 1e12) == (1, 64)


@needs_pool
@pytest.mark.parametrize("throw_at", [0, 31, 63])
def test_an_exception_in_a_region_is_rethrown_and_the_pool_survives(restore_threads, throw_at):
    eosfast.set_num_threads(2)
    for _ in range(3):
        with pytest.raises(ValueError, match=f"chunk {throw_at} failed"):
            eosfast._core._parallel_probe(64, 1e12, throw_at)
    assert eosfast._core._parallel_probe(64, 1e12)[1] == 64
