"""SharpnessTracker: warm-started tracking along a slowly changing operator."""

import eosfast
import numpy as np
import pytest
from _spectra import reflected
from conftest import random_symmetric
from eosfast.problems import Quadratic


def drifting(rng, n=300, steps=12, top=(10.0, 7.0, 5.0), drift=1e-3):
    """A_t = A_0 + t E: outliers over a bulk, moving slowly (|E| ~ drift * |A|)."""
    spectrum = rng.uniform(-1, 1, n)
    spectrum[: len(top)] = top
    A0 = reflected(rng, spectrum)
    E = reflected(rng, rng.uniform(-1, 1, n)) * drift * top[0]
    return [A0 + t * E for t in range(steps)]


def test_tracks_top_eigenvalue_with_few_products(rng):
    ops = drifting(rng)
    tracker = eosfast.SharpnessTracker(k=1, tol=1e-6)
    products, previous = [], None
    for A in ops:
        res = tracker.measure(A)
        exact = np.linalg.eigvalsh(A)[-1]
        assert res.all_converged
        assert abs(res.eigenvalues[0] - exact) <= 1e-6 * exact
        v = res.eigenvectors[:, 0]
        assert np.linalg.norm(A @ v - res.eigenvalues[0] * v) <= 1e-6 * exact * 1.01
        if previous is not None:
            assert v @ previous > 0  # signs aligned with the previous vector
        previous = v
        products.append(res.matvecs)
    warm = np.mean(products[1:])
    assert warm <= 6, products
    assert products[0] > warm


def test_warm_agrees_with_cold_k3(rng):
    ops = drifting(rng, steps=6, top=(10.0, 9.0, 8.5, 4.0))
    tracker = eosfast.SharpnessTracker(k=3, tol=1e-8)
    for A in ops:
        res = tracker.measure(A)
        cold = eosfast.eigsh(A, k=3, tol=1e-8, seed=0)
        np.testing.assert_allclose(res.eigenvalues, cold.eigenvalues, atol=1e-8 * 10)
        overlap = np.abs(np.sum(res.eigenvectors * cold.eigenvectors, axis=0))
        np.testing.assert_allclose(overlap, 1, atol=1e-6)


def test_restore_is_bitwise(rng):
    ops = drifting(rng, steps=7)
    reference = eosfast.SharpnessTracker(k=2, tol=1e-7, seed=3)
    results = [reference.measure(A) for A in ops]

    tracker = eosfast.SharpnessTracker(k=2, tol=1e-7, seed=3)
    for A in ops[:3]:
        tracker.measure(A)
    state = tracker.state()
    assert set(state) == {
        "vectors",
        "values",
        "older",
        "k",
        "rng_state",
        "measurements",
        "options",
        "format",
    }
    assert state["vectors"].shape == (300, 2) and state["measurements"] == 3
    assert state["older"].shape == (300, 2)
    restored = eosfast.SharpnessTracker.from_state(state)
    np.testing.assert_array_equal(restored.last.eigenvalues, results[2].eigenvalues)
    assert np.all(np.isnan(restored.last.residuals))
    other = eosfast.SharpnessTracker(k=2, tol=1e-7, seed=3)
    other.restore(state)
    for A, expected in zip(ops[3:], results[3:], strict=True):
        for t in (restored, other):
            got = t.measure(A)
            np.testing.assert_array_equal(got.eigenvalues, expected.eigenvalues)
            np.testing.assert_array_equal(got.eigenvectors, expected.eigenvectors)
            np.testing.assert_array_equal(got.residuals, expected.residuals)
            assert got.matvecs == expected.matvecs


def test_grow_above_covers_every_eigenvalue_above(rng):
    n = 300
    spectrum = rng.uniform(-1, 1, n)
    spectrum[:4] = [9.0, 8.0, 7.0, 6.0]
    A = reflected(rng, spectrum)
    tracker = eosfast.SharpnessTracker(k=1, tol=1e-8, grow_above=5.0)
    res = tracker.measure(A)
    assert res.eigenvalues.size >= 5
    np.testing.assert_allclose(res.eigenvalues[:4], [9, 8, 7, 6], atol=1e-7)
    assert res.eigenvalues[-1] < 5.0
    assert tracker.state()["k"] == 5
    # fewer above the threshold: the next k shrinks to count + 1
    spectrum[2:4] = [3.0, 2.0]
    res = tracker.measure(reflected(rng, spectrum))
    np.testing.assert_allclose(res.eigenvalues[:2], [9, 8], atol=1e-7)
    assert tracker.state()["k"] == 3
    capped = eosfast.SharpnessTracker(k=1, grow_above=-10.0, max_k=3)
    assert capped.measure(A).eigenvalues.size == 3


@pytest.mark.parametrize("threads", [2, 3])
def test_bitwise_identical_across_threads(rng, restore_threads, threads):
    n = 20000 + 17
    d0 = 0.01 * rng.standard_normal(n)
    d0[:3] = [5.0, 4.0, 3.0]
    drift = 1e-4 * rng.standard_normal(n)
    ops = [Quadratic(d0 + t * drift).hessian(np.zeros(n)) for t in range(5)]

    def track():
        out = []
        for k in (1, 2):  # k = 1: extrapolated Lanczos start; k = 2: eigsh from the sum
            tracker = eosfast.SharpnessTracker(k=k, tol=1e-8, seed=1)
            out += [tracker.measure(op) for op in ops]
        return out

    eosfast.set_num_threads(1)
    reference = track()
    eosfast.set_num_threads(threads)
    for r, s in zip(reference, track(), strict=True):
        np.testing.assert_array_equal(r.eigenvalues, s.eigenvalues)
        np.testing.assert_array_equal(r.eigenvectors, s.eigenvectors)
        assert r.matvecs == s.matvecs


def test_callable_operators_and_bad_input(rng):
    A = random_symmetric(rng, 40)
    tracker = eosfast.SharpnessTracker()
    res = tracker.measure(lambda v: A @ v, dim=40)
    assert res.eigenvalues[0] == pytest.approx(np.linalg.eigvalsh(A)[-1], abs=1e-5)
    B = rng.standard_normal((40, 40))
    with pytest.raises(ValueError, match="not symmetric"):
        eosfast.SharpnessTracker().measure(lambda v: B @ v, dim=40)
    with pytest.raises(ValueError):
        eosfast.SharpnessTracker(k=0)
    with pytest.raises(ValueError, match="max_k"):
        eosfast.SharpnessTracker(k=4, max_k=2)
    with pytest.raises(ValueError, match="grow_above"):
        eosfast.SharpnessTracker(grow_above=np.inf)
    with pytest.raises(ValueError, match="tol"):
        eosfast.SharpnessTracker(tol=2.0)
    state = tracker.state()
    with pytest.raises(ValueError, match="lacks"):
        tracker.restore({"vectors": state["vectors"]})
    with pytest.raises(ValueError, match="vectors"):
        tracker.restore({**state, "values": np.ones(3)})
    with pytest.raises(ValueError, match="k"):
        tracker.restore({**state, "k": 100})


def test_dimension_change_starts_cold(rng):
    tracker = eosfast.SharpnessTracker(k=1)
    a = tracker.measure(random_symmetric(rng, 30))
    b = tracker.measure(random_symmetric(rng, 50))
    assert a.eigenvectors.shape == (30, 1) and b.eigenvectors.shape == (50, 1)


@pytest.mark.parametrize("value_tol", [1e-6, 1e-8])
def test_value_tol_bounds_the_eigenvalue_error(rng, value_tol):
    ops = drifting(rng, steps=10, top=(10.0, 9.0, 5.0), drift=3e-3)
    strict = eosfast.SharpnessTracker(k=1, tol=1e-10)
    loose = eosfast.SharpnessTracker(k=1, tol=1e-10, value_tol=value_tol)
    assert loose.options["value_tol"] == value_tol
    spent = {"strict": 0, "loose": 0}
    for A in ops:
        exact = np.linalg.eigvalsh(A)[-1]
        a, b = strict.measure(A), loose.measure(A)
        assert a.all_converged and b.all_converged
        # the a-posteriori bound holds against the dense reference
        assert abs(b.eigenvalues[0] - exact) <= value_tol * exact
        v = b.eigenvectors[:, 0]
        r = np.linalg.norm(A @ v - b.eigenvalues[0] * v)
        assert r == pytest.approx(b.residuals[0], rel=1e-6, abs=1e-12)
        spent["strict"] += a.matvecs
        spent["loose"] += b.matvecs
    assert spent["loose"] < spent["strict"], spent


def test_value_tol_validation():
    for bad in (0.0, 1.0, -1e-6, True):
        with pytest.raises((ValueError, TypeError), match="value_tol"):
            eosfast.SharpnessTracker(value_tol=bad)
    assert eosfast.SharpnessTracker().options["value_tol"] is None


def rotating(rng, n=200, steps=10, angle=0.03):
    """Q_t diag(d) Q_t^T: the top eigenvector turns in a plane at a steady rate."""
    d = rng.uniform(-1, 1, n)
    d[:2] = [6.0, 5.0]
    Q0, _ = np.linalg.qr(rng.standard_normal((n, n)))
    G, _ = np.linalg.qr(rng.standard_normal((n, n)))
    ops = []
    for t in range(steps):
        c, s = np.cos(angle * t), np.sin(angle * t)
        R = np.eye(n)
        R[np.ix_([0, 2], [0, 2])] = [[c, -s], [s, c]]
        Q = Q0 @ G @ R @ G.T
        ops.append((Q * d) @ Q.T)
    return ops


def test_extrapolated_start_agrees_with_cold_and_helps(rng):
    ops = rotating(rng)
    tracker = eosfast.SharpnessTracker(k=1, tol=1e-8)
    plain = eosfast.SharpnessTracker(k=1, tol=1e-8)
    spent = {"extrapolated": 0, "plain": 0}
    for i, A in enumerate(ops):
        state = dict(plain.state())
        state.pop("older")  # a state saved before 'older' existed: starts from v_t
        plain.restore(state)
        res, ref = tracker.measure(A), plain.measure(A)
        w, V = np.linalg.eigh(A)
        assert res.all_converged
        assert abs(res.eigenvalues[0] - w[-1]) <= 1e-8 * w[-1]
        assert abs(res.eigenvectors[:, 0] @ V[:, -1]) == pytest.approx(1, abs=1e-8)
        assert abs(ref.eigenvalues[0] - w[-1]) <= 1e-8 * w[-1]
        if i >= 2:
            spent["extrapolated"] += res.matvecs
            spent["plain"] += ref.matvecs
    assert spent["extrapolated"] < spent["plain"], spent


def test_warm_k3_keeps_copies_of_a_repeated_eigenvalue(rng):
    n = 150
    d = rng.uniform(-1, 1, n)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    tracker = eosfast.SharpnessTracker(k=3, tol=1e-8)
    for t in range(5):
        dt = d.copy()
        dt[:3] = [8.0 + 0.01 * t, 8.0 + 0.01 * t, 6.0]  # a double top eigenvalue, moving
        A = (Q * dt) @ Q.T
        res = tracker.measure(A)
        np.testing.assert_allclose(
            res.eigenvalues, [8.0 + 0.01 * t, 8.0 + 0.01 * t, 6.0], atol=1e-7
        )
        V = res.eigenvectors
        np.testing.assert_allclose(V.T @ V, np.eye(3), atol=1e-8)


def test_loose_tolerance_does_not_take_close_eigenvalues_for_copies(rng):
    """Distinct eigenvalues 3-5 % apart are not copies at tol 1e-3: the warm k = 3
    measurements stay single-vector Lanczos runs and cost no more than at tol 1e-4."""
    ops = drifting(rng, steps=8, top=(10.0, 9.6, 9.3), drift=3e-3)
    spent = {}
    for tol in (1e-3, 1e-4):
        tracker = eosfast.SharpnessTracker(k=3, tol=tol)
        spent[tol] = 0
        for i, A in enumerate(ops):
            res = tracker.measure(A)
            exact = np.linalg.eigvalsh(A)[::-1][:3]
            assert res.all_converged
            np.testing.assert_allclose(res.eigenvalues, exact, atol=tol * exact[0])
            if i > 0:
                spent[tol] += res.matvecs
    assert spent[1e-3] <= spent[1e-4], spent
