import math

import eosfast
import numpy as np
import pytest
from conftest import random_symmetric
from eosfast.problems import Quadratic


def quadratic(rng, n=5, spectrum=None):
    spectrum = np.linspace(0.5, 4.0, n) if spectrum is None else spectrum
    A = random_symmetric(rng, n, spectrum)
    return Quadratic(A, 0.3 * rng.standard_normal(n)), A


def reference_step(name, params, x, g, loss, lr, state):
    """One step of each update rule in plain numpy."""
    if name == "GD":
        beta, nesterov = params.get("momentum", 0.0), params.get("nesterov", False)
        if beta == 0:
            return x - lr * g
        state["v"] = beta * state.get("v", np.zeros_like(x)) + g
        return x - lr * (g + beta * state["v"]) if nesterov else x - lr * state["v"]
    if name == "NormalizedGD":
        return x - lr * g / np.linalg.norm(g)
    if name == "SqrtGD":
        return x - lr * g / (2 * np.sqrt(loss - params["loss_min"]))
    if name == "PowerLossGD":
        p, m = params["p"], params["loss_min"]
        return x - lr * p * (loss - m) ** (p - 1) * g


CASES = [
    ("GD", {}),
    ("GD", {"momentum": 0.9}),
    ("GD", {"momentum": 0.5, "nesterov": True}),
    ("NormalizedGD", {}),
    ("SqrtGD", {"loss_min": -1.0}),
    ("PowerLossGD", {"p": 0.75, "loss_min": -1.0}),
    ("PowerLossGD", {"p": 1.5, "loss_min": -1.0}),
]


@pytest.mark.parametrize("name,params", CASES)
@pytest.mark.parametrize(
    "lr", [0.1, "array", eosfast.Schedule.cosine(0.2, 4, lr_min=0.01, warmup_steps=2)]
)
def test_update_rule_matches_numpy(rng, name, params, lr):
    problem, A = quadratic(rng)
    if isinstance(lr, str):
        lr = rng.uniform(0.05, 0.2, size=6)
    opt = getattr(eosfast, name)(lr, **params)
    x0 = 0.5 * rng.standard_normal(problem.dim)
    traj = eosfast.run(problem, opt, x0, 6, save_iterates_every=1)
    assert traj.status == "completed"
    lrs = opt.schedule.values(6)
    x, state = x0.copy(), {}
    for t in range(6):
        loss, g = 0.5 * x @ A @ x - problem.b @ x, A @ x - problem.b
        assert traj.loss[t] == pytest.approx(loss, rel=1e-13, abs=1e-13)
        assert traj.lr[t] == lrs[t]
        x_next = reference_step(name, params, x, g, loss, lrs[t], state)
        np.testing.assert_allclose(traj.iterates[t + 1], x_next, rtol=1e-14, atol=1e-14)
        assert traj.step_norm[t] == pytest.approx(np.linalg.norm(x_next - x), rel=1e-13)
        eff = np.linalg.norm(x_next - x) / np.linalg.norm(g)  # exact for momentum-free rules
        if name != "GD" or not params:
            assert traj.effective_lr[t] == pytest.approx(eff, rel=1e-12)
        x = traj.iterates[t + 1]
    np.testing.assert_array_equal(traj.x_final, traj.iterates[-1])


def test_objectives_and_thresholds():
    b = 0.9
    assert eosfast.GD(0.1).threshold(1.0, 1.0) == pytest.approx(20.0)
    assert eosfast.GD(0.1, momentum=b).threshold(1.0, 1.0) == pytest.approx((2 + 2 * b) / 0.1)
    assert eosfast.GD(0.1, momentum=b, nesterov=True).threshold(1.0, 1.0) == pytest.approx(
        (2 + 2 * b) / ((1 + 2 * b) * 0.1)
    )
    ngd = eosfast.NormalizedGD(0.1)
    assert ngd.effective_lr(1.0, 4.0) == pytest.approx(0.025)
    assert ngd.threshold(1.0, 4.0) == pytest.approx(80.0)
    sq = eosfast.SqrtGD(0.1, loss_min=1.0)
    assert sq.threshold(5.0, 1.0) == pytest.approx(4 * 2 / 0.1)
    assert sq.effective_lr(5.0, 1.0) == pytest.approx(0.1 / 4)
    assert sq.objective(5.0) == pytest.approx(2.0)
    pw = eosfast.PowerLossGD(0.1, p=3.0, loss_min=1.0)
    assert pw.objective(3.0) == pytest.approx(8.0)
    assert pw.effective_lr(3.0, 1.0) == pytest.approx(0.1 * 3 * 4)
    assert eosfast.GD(0.1).objective(3.0) == 3.0


def grow_factor(problem, opt, steps=2000):
    x0 = np.ones(problem.dim)
    traj = eosfast.run(problem, opt, x0, steps, diverge_factor=math.inf, record_every=10)
    return traj.loss.max() / traj.loss[0], traj.loss[-1] / traj.loss[0], traj


@pytest.mark.parametrize(
    "momentum,nesterov",
    [(0.0, False), (0.5, False), (0.9, False), (0.5, True), (0.9, True)],
)
def test_stability_threshold_on_a_quadratic(rng, momentum, nesterov):
    spectrum = np.linspace(1.0, 10.0, 6)
    problem = Quadratic(random_symmetric(rng, 6, spectrum))
    b = momentum
    if nesterov:
        edge = (2 + 2 * b) / ((1 + 2 * b) * spectrum[-1])
    else:
        edge = (2 + 2 * b) / spectrum[-1]
    above = eosfast.GD(1.05 * edge, momentum=momentum, nesterov=nesterov)
    assert above.threshold(1.0, 1.0) == pytest.approx(spectrum[-1] / 1.05)
    peak, _, _ = grow_factor(problem, above)
    assert peak > 1e6
    _, last, traj = grow_factor(
        problem, eosfast.GD(0.95 * edge, momentum=momentum, nesterov=nesterov)
    )
    assert last < 1e-3 and traj.status == "completed"


@pytest.mark.parametrize("lam,lr", [(1.0, 0.1), (4.0, 0.03), (0.5, 0.25)])
def test_ngd_and_sqrt_gd_two_cycles_in_one_dimension(lam, lr):
    problem = Quadratic(np.array([lam]))
    for opt, size in ((eosfast.NormalizedGD(lr), lr), (eosfast.SqrtGD(lr), lr * np.sqrt(lam / 2))):
        traj = eosfast.run(
            problem, opt, np.array([1.3]), 400, save_iterates_every=1, sharpness_every=1
        )
        assert traj.status == "completed"
        x = traj.iterates[-40:, 0]
        np.testing.assert_allclose(np.abs(x[:-1]) + np.abs(x[1:]), size, rtol=1e-12)
        assert np.all(x[:-1] * x[1:] < 0)
        eos = traj.eos
        np.testing.assert_allclose(eos["sqrt_loss_sum"][-40:-1], eos["sqrt_loss_reference"][-40:-1])
        if isinstance(opt, eosfast.NormalizedGD):
            np.testing.assert_allclose(eos["inv_stableness_sum"][-40:-1], 1.0, rtol=1e-10)
            np.testing.assert_allclose(eos["sqrt_loss_reference"][:-1], lr * np.sqrt(lam / 2))
        else:
            np.testing.assert_allclose(eos["sqrt_loss_reference"][:-1], lr * lam / 2)
        # In the cycle one of two consecutive steps is at least 2-stable.
        s = traj.effective_lr[-40:] * lam
        assert np.all(np.maximum(s[:-1], s[1:]) >= 2 - 1e-9)


def test_converged_rules():
    problem = Quadratic(np.array([2.0, 1.0]), b=np.array([2.0, 1.0]))  # minimiser (1, 1), L* = -1.5
    ngd = eosfast.run(problem, eosfast.NormalizedGD(0.1), np.ones(2), 10)
    assert ngd.status == "converged" and ngd.step == 0 and len(ngd.loss) == 1
    sq = eosfast.run(problem, eosfast.SqrtGD(0.1, loss_min=-1.0), np.array([1.1, 0.9]), 10)
    assert sq.status == "converged" and sq.step == 0
    assert np.isnan(sq.objective[0]) and np.isnan(sq.step_norm[0])
    pw = eosfast.run(problem, eosfast.PowerLossGD(0.1, p=0.5, loss_min=-1.5), np.ones(2), 10)
    assert pw.status == "converged"
    np.testing.assert_array_equal(pw.x_final, np.ones(2))


def test_schedules():
    np.testing.assert_allclose(eosfast.Schedule.constant(0.3).values(3), [0.3] * 3)
    np.testing.assert_allclose(
        eosfast.Schedule.linear_warmup(0.4, 4).values(6), [0.1, 0.2, 0.3, 0.4, 0.4, 0.4]
    )
    cos = eosfast.Schedule.cosine(1.0, 6, lr_min=0.2, warmup_steps=2).values(8)
    s = np.clip((np.arange(8) - 2) / 4, 0, 1)
    expected = np.where(
        np.arange(8) < 2, (np.arange(8) + 1) / 2, 0.2 + 0.8 * (1 + np.cos(np.pi * s)) / 2
    )
    np.testing.assert_allclose(cos, expected, rtol=1e-15)
    arr = eosfast.Schedule.array([0.1, 0.2])
    assert arr(1) == 0.2
    with pytest.raises(ValueError, match="defines 2 steps"):
        arr(2)
    with pytest.raises(ValueError, match="fewer than steps"):
        eosfast.run(Quadratic(np.ones(2)), eosfast.GD(np.array([0.1, 0.1])), np.ones(2), 3)
    for sched in (arr, eosfast.Schedule.cosine(1.0, 6, lr_min=0.2, warmup_steps=2)):
        again = eosfast.Schedule.from_config(sched.config())
        np.testing.assert_array_equal(again.values(2), sched.values(2))


@pytest.mark.parametrize(
    "make",
    [
        lambda: eosfast.GD(0.0),
        lambda: eosfast.GD(-1.0),
        lambda: eosfast.GD(0.1, momentum=1.0),
        lambda: eosfast.GD(0.1, nesterov=True),
        lambda: eosfast.GD(np.array([0.1, -0.1])),
        lambda: eosfast.SqrtGD(0.1, loss_min=math.nan),
        lambda: eosfast.PowerLossGD(0.1, p=0.0),
        lambda: eosfast.Schedule.cosine(0.1, 5, lr_min=0.2),
        lambda: eosfast.Schedule.linear_warmup(0.1, 0),
    ],
)
def test_bad_arguments(make):
    with pytest.raises(ValueError):
        make()


def test_optimizer_config_round_trip():
    from eosfast.optimizers import optimizer_from_config

    for opt in (
        eosfast.GD(0.1, momentum=0.9, nesterov=True),
        eosfast.NormalizedGD(eosfast.Schedule.linear_warmup(0.2, 5)),
        eosfast.SqrtGD(0.1, loss_min=0.5),
        eosfast.PowerLossGD(np.array([0.1, 0.2]), p=1.5, loss_min=-1.0),
    ):
        again = optimizer_from_config(opt.config())
        assert repr(again) == repr(opt)
        assert again.threshold(2.0, 1.0) == opt.threshold(2.0, 1.0)
