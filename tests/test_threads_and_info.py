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
from eosfast.problems import Quadratic


def run_python(code, **env):
    full_env = {**os.environ, **env}
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
    assert isinstance(facts["openmp"], bool)
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
    eosfast.set_num_threads(None)
    assert eosfast.get_num_threads() == eosfast.info()["hardware_threads"]
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
