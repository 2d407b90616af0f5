"""The benchmark suite (benchmarks/run.py) cannot rot.

The quick run itself takes up to two minutes and needs the `bench` extra (PyTorch, PyHessian,
hessian-eigenthings), so CI runs ``python benchmarks/run.py --quick --out DIR`` after the test
suite and then this file with ``EOSFAST_BENCH_RESULTS=DIR``: every case must have run and
produced finite numbers. Without the variable only the harness's own logic is tested here.
"""

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import _models  # noqa: E402
import _report  # noqa: E402
import bench_dynamics  # noqa: E402
import bench_spectrum  # noqa: E402
from _harness import Row, measure  # noqa: E402

CASES = (
    "1-hvp",
    "2-sharpness",
    "3-tracking",
    "4-overhead",
    "5-threads",
    "6-memory",
    "7-flow",
    "8-central",
    "9-mpi",
)


@pytest.mark.parametrize("hidden", [(7,), (5, 6), (4, 3, 5)])
def test_flop_counts_match_a_count_of_the_matrix_products(hidden):
    spec = _models.MLPSpec("t", 3, hidden, 2, 11)
    layers = spec.layers
    n = spec.n
    fwd = [2 * n * i * o for i, o in layers]
    # gradient: forward, W-gradients, input gradients except for the first layer
    grad = sum(fwd) + sum(fwd) + sum(fwd[1:])
    assert spec.grad_flops() == grad
    for m in (1, 8):
        # R-op: forward + backward once, per vector tangent forward (W Rh and V h), tangent
        # backward (Rdelta W and delta V), Hessian blocks (Rdelta^T h and delta^T Rh);
        # the first layer has Rh = 0 and needs no input gradients.
        once = sum(fwd) + sum(fwd[1:])
        per_vector = fwd[0] * 2 + sum(f * 6 for f in fwd[1:])
        assert spec.hvp_flops(m) == once + m * per_vector
        assert spec.hvp_flops(m, cached=True) == m * per_vector


def test_params_init_and_unflatten_follow_the_torch_layout():
    spec = _models.MLPSpec("t", 3, (4,), 2, 5)
    x = _models.init_params(spec, seed=0)
    assert x.shape == (spec.params,) == (3 * 4 + 4 + 4 * 2 + 2,)
    (W1, b1), (W2, b2) = _models.unflatten(spec, x)
    assert W1.shape == (4, 3) and b1.shape == (4,) and W2.shape == (2, 4) and b2.shape == (2,)
    assert np.all(np.abs(W1) <= 1 / np.sqrt(3)) and np.all(np.abs(W2) <= 1 / np.sqrt(4))
    X = np.random.default_rng(0).standard_normal((5, 3))
    expected = np.tanh(X @ W1.T + b1) @ W2.T + b2
    np.testing.assert_allclose(_models.forward_numpy(spec, x, X), expected, rtol=1e-14)


def test_torch_twin_computes_the_same_network():
    torch = pytest.importorskip("torch")
    spec = _models.MLPSpec("t", 3, (4, 5), 2, 6)
    x = _models.init_params(spec, seed=1)
    X, Y = _models.make_data(spec)
    model = _models.torch_module(spec, x, torch.float64)
    with torch.no_grad():
        out = model(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(out, _models.forward_numpy(spec, x, X), rtol=1e-13)
    flat = torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    np.testing.assert_array_equal(flat, x)


def test_measure_reports_best_not_above_median():
    t = measure(lambda: sum(range(1000)), min_time=0.01, max_repeats=5)
    assert 0 < t.best <= t.median and 1 <= t.repeats <= 5 and t.value == sum(range(1000))


def test_summary_ratios_pick_the_best_peer_per_precision():
    rows = [
        Row("1-hvp", "HVP [1e5] s", "eosfast a", 2.0, eosfast=True),
        Row("1-hvp", "HVP [1e5] s", "eosfast b", 1.0, eosfast=True),
        Row("1-hvp", "HVP [1e5] s", "torch f64 slow", 5.0),
        Row("1-hvp", "HVP [1e5] s", "torch f64 fast", 3.0),
        Row("1-hvp", "HVP [1e5] s", "torch f32", 0.5, precision="f32"),
        Row("1-hvp", "HVP [1e5] s", "context", 0.1, peer=False),
    ]
    (s,) = _report.summary(rows)
    assert s["eosfast"] == "eosfast b"
    assert s["peer_f64"] == "torch f64 fast" and s["speedup_f64"] == pytest.approx(3.0)
    assert s["peer_any"] == "torch f32" and s["speedup_any"] == pytest.approx(0.5)
    (t,) = _report.targets(rows, [s])
    assert t["met"] and t["measured"] == pytest.approx(3.0)


def test_bench_dynamics_overhead_against_numpy():
    rows = bench_dynamics.overhead(steps=2000, numpy_steps=200, repeats=1)
    kinds = {r["optimizer"] for r in rows}
    assert kinds == {"GD", "GD+momentum", "NormalizedGD", "SqrtGD"}
    assert {r["record_every"] for r in rows} == {1, 2000}
    for r in rows:
        assert 0 < r["ns_per_step"] < 1e6 and 0 < r["numpy_ns_per_step"] < 1e6, r


@pytest.mark.usefixtures("restore_threads")
def test_bench_dynamics_cost_split_of_an_mlp_at_eos():
    import eosfast

    eosfast.set_num_threads(1)  # tiny products: threads would only wait for each other
    split = bench_dynamics.cost_split(steps=60, sharpness_every=10, n=64)
    assert split["problem"].startswith("MLP") and split["status"] == "completed"
    assert split["hvps"] > 0 and split["hvps_per_measurement"] >= 1
    for key in ("total_s", "gradient_s", "sharpness_s", "bookkeeping_s"):
        assert math.isfinite(split[key]), key
    assert split["total_s"] > 0 and split["gradient_s"] > 0
    parts = split["gradient_s"] + split["sharpness_s"] + split["bookkeeping_s"]
    assert parts == pytest.approx(split["total_s"])
    assert math.isfinite(split["sharpness_ratio_last_quarter"])


def _results():
    folder = os.environ.get("EOSFAST_BENCH_RESULTS")
    if not folder:
        pytest.skip("set EOSFAST_BENCH_RESULTS to the --out folder of `benchmarks/run.py --quick`")
    files = sorted(Path(folder).glob("quick-*.json"), key=lambda p: p.stat().st_mtime)
    assert files, f"no quick-*.json in {folder}"
    return json.loads(files[-1].read_text())


def test_quick_run_covered_every_case_with_finite_numbers():
    res = _results()
    rows = res["rows"]
    assert {r["case"] for r in rows} == set(CASES)
    bad = [r for r in rows if not math.isfinite(r["seconds"]) or r["note"].startswith("FAILED")]
    assert not bad, bad
    for r in rows:
        for key, value in r["metrics"].items():
            if isinstance(value, float):
                assert math.isfinite(value), (r["method"], key, value)
    for case in CASES:
        assert any(r["case"] == case and r["eosfast"] for r in rows), case
        assert any(r["case"] == case and not r["eosfast"] for r in rows), case
    assert {s["case"] for s in res["summary"]} == set(CASES)
    assert all(s["speedup_f64"] > 0 for s in res["summary"] if "speedup_f64" in s)


def test_quick_run_recorded_the_machine():
    info = _results()["machine"]
    for key in ("cpu_model", "usable_cores", "versions", "threads", "eosfast_info", "gemm_rate"):
        assert info[key], key
    assert all(rate > 1e8 for rate in info["gemm_rate"].values())
    assert info["versions"]["torch"] and info["versions"]["pyhessian"]
    assert info["versions"]["hessian-eigenthings"]


def test_bench_spectrum_compares_with_arpack_on_every_case():
    rows = bench_spectrum.compare(quick=True, tol=1e-8, repeats=1, verbose=False)
    assert {r["k"] for r in rows} == set(bench_spectrum.KS)
    assert len({r["case"] for r in rows}) == 3
    for r in rows:
        assert r["converged"] and r["rel_err"] < 1e-8, r
        assert r["matvecs_eosfast"] > 0 and r["matvecs_arpack"] > 0
        assert r["seconds_eosfast"] > 0 and r["seconds_arpack"] > 0


def test_bench_spectrum_tracking_checks_every_measurement():
    rows = bench_spectrum.tracking(quick=True, verbose=False, steps=50)
    assert {(r["k"], r["tol"]) for r in rows} == {
        (k, tol) for k in (1, 3) for tol in bench_spectrum.TRACK_TOLS
    }
    for r in rows:
        assert r["measurements"] == 6 and r["hvps_cold"] > r["hvps_per_warm"] > 0, r
        assert 0 <= r["max_rel_err"] <= 10 * r["tol"] and r["max_rel_res"] <= r["tol"] * 1.01, r
    best = bench_spectrum.tracking_cost(rows, rows[0]["case"], 1)
    assert best is not None and best["max_rel_err"] <= bench_spectrum.TRACK_TARGET_ERROR


@pytest.mark.slow
def test_flow_case_quick_reports_time_work_and_the_reference_distance():
    pytest.importorskip("sklearn")
    import case_flow
    from _harness import Context

    rows = case_flow.run(Context(quick=True, nthreads=1, min_time=0.1))
    assert not [r for r in rows if r.note.startswith("FAILED")], rows
    assert {r.eosfast for r in rows} == {True, False}
    for r in rows:
        assert math.isfinite(r.seconds) and r.seconds > 0, r
        for key, value in r.metrics.items():
            assert math.isfinite(value), (r.method, key, value)
    gn = next(r for r in rows if "gauss-newton" in r.method)
    assert gn.metrics["jacobians"] >= 1 and gn.metrics["grad_norm"] <= 1e-9
    assert gn.metrics["distance_to_reference"] < 1e-6
    pc = next(r for r in rows if "predict_and_compare" in r.method)
    assert pc.metrics["phase2_steps"] > 0 and pc.metrics["flow_steps"] > 0
    ref = next(r for r in rows if "projections of the comparison" in r.method)
    assert ref.metrics["max_distance_to_eosfast_projections"] < 1e-6
