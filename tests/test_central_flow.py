"""The central flow of GD (Cohen, Damian, Talwalkar, Kolter & Lee 2025): a 3-D toy whose
constrained flow has a closed form, a 5-D toy with two eigenvalues at the edge against
solve_ivp on its hand-derived ODE, the complementarity solve against scipy.optimize,
and a digits MLP at the edge of stability against the window-averaged GD loss."""

import re
from pathlib import Path

import eosfast
import numpy as np
import pytest
from eosfast import flow
from eosfast.problems import Callback, Quadratic
from scipy.integrate import solve_ivp
from scipy.optimize import minimize


def sliding_toy():
    """L(x, z, y) = 1/2 a y^2 - x with a = 1 + x^2 + z^2.

    On y = 0 the Hessian is diag(0, 0, a): lambda_1 = a, v_1 = e_y, grad lambda_1 =
    (2x, 2z, 0). Gradient flow moves x at unit speed (z, y fixed) until a = 2/lr, i.e. the
    circle x^2 + z^2 = R^2 = 2/lr - 1; then the central flow slides along it:
    with theta the angle of (x, z), R dtheta/dt = -sin(theta), so
    tan(theta/2) = tan(theta_0/2) exp(-(t - t*)/R), and sigma^2 = X = x / R^2.
    """

    def loss_and_grad(p):
        x, z, y = p
        a = 1 + x * x + z * z
        return 0.5 * a * y * y - x, np.array([-1 + x * y * y, z * y * y, a * y])

    def hvp(p, v):
        x, z, y = p
        a = 1 + x * x + z * z
        H = np.array([[y * y, 0, 2 * x * y], [0, y * y, 2 * z * y], [2 * x * y, 2 * z * y, a]])
        return H @ v

    def third(p, u):
        x, z, y = p
        return np.array(
            [
                4 * y * u[2] * u[0] + 2 * x * u[2] ** 2,
                4 * y * u[2] * u[1] + 2 * z * u[2] ** 2,
                2 * y * (u[0] ** 2 + u[1] ** 2) + 4 * u[2] * (x * u[0] + z * u[1]),
            ]
        )

    return Callback(loss_and_grad, 3, hvp=hvp, third=third)


def sliding_exact(t, x0, z0, lr):
    R = np.sqrt(2 / lr - 1)
    t_star = np.sqrt(R * R - z0 * z0) - x0
    if t <= t_star:
        return np.array([x0 + t, z0, 0.0]), 0.0
    theta0 = np.arctan2(z0, np.sqrt(R * R - z0 * z0))
    theta = 2 * np.arctan(np.tan(theta0 / 2) * np.exp(-(t - t_star) / R))
    x = R * np.cos(theta)
    return np.array([x, R * np.sin(theta), 0.0]), x / R**2


def test_toy_closed_form_to_1e8():
    lr, x0, z0 = 0.2, 0.5, 1.5
    times = np.linspace(0.0, 6.0, 13)
    cf = flow.central_flow(
        sliding_toy(), [x0, z0, 0.0], lr, 6.0, times=times, rtol=1e-11, atol=1e-13
    )
    t_star = np.sqrt(2 / lr - 1 - z0 * z0) - x0
    assert cf.entry_time == pytest.approx(t_star, abs=1e-9)
    for n, t in enumerate(times):
        state, variance = sliding_exact(t, x0, z0, lr)
        np.testing.assert_allclose(cf.states[n], state, rtol=0, atol=1e-8)
        if t > t_star:
            assert cf.edge[n] == 1
            assert cf.sharpness[n] == pytest.approx(2 / lr, rel=1e-10)
            assert cf.covariance[n][0, 0] == pytest.approx(variance, abs=1e-8)
            # predicted time-averaged loss L + sigma^2 lambda_1 / 2 = L + sigma^2 / lr
            assert cf.predicted_loss[n] == pytest.approx(cf.loss[n] + variance / lr, abs=1e-8)
        else:
            assert cf.edge[n] == 0 and cf.predicted_loss[n] == cf.loss[n]
    assert cf.third_products > 0 and cf.hvps > 0 and cf.grad_evals == cf.evaluations


def test_stable_flow_is_gradient_flow():
    problem = Quadratic(np.array([0.5, 2.0, 3.0]))  # lambda_1 = 3 < 2/lr = 4 throughout
    times = [0.0, 0.5, 2.0]
    cf = flow.central_flow(problem, np.ones(3), 0.5, 2.0, times=times, rtol=1e-10, atol=1e-12)
    exact = np.exp(-np.outer(times, [0.5, 2.0, 3.0]))
    np.testing.assert_allclose(cf.states, exact, atol=1e-9)
    assert cf.entry_time is None and cf.third_products == 0
    np.testing.assert_array_equal(cf.predicted_loss, cf.loss)


def _random_sdcp(k, seed):
    rng = np.random.default_rng(seed)
    pairs = k * (k + 1) // 2
    # B[X]_ij = 1/2 <g_ij, sum_kl X_kl g_kl>, the map of the central flow, g_ij = g_ji.
    g = rng.standard_normal((k, k, pairs + 2))
    g = 0.5 * (g + g.transpose(1, 0, 2))
    B = 0.5 * np.einsum("ijd,kld->ijkl", g, g)
    M = rng.standard_normal((k, k))
    A = 0.5 * (M + M.T) - 0.5 * np.eye(k)
    return A, B


def _reference(A, B, k):
    """scipy.optimize (BFGS) on the equivalent convex problem in a factor X = F F^T."""

    def objective(f):
        F = f.reshape(k, k)
        X = F @ F.T
        BX = np.einsum("ijkl,kl->ij", B, X)
        value = np.sum(A * X) + 0.5 * np.sum(X * BX)
        grad = 2 * (A + BX) @ F
        return value, grad.ravel()

    best = None
    for seed in range(3):
        f0 = np.random.default_rng(100 + seed).standard_normal(k * k)
        res = minimize(objective, f0, jac=True, method="BFGS", options={"gtol": 1e-13})
        if best is None or res.fun < best.fun:
            best = res
    F = best.x.reshape(k, k)
    return F @ F.T


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sdcp_against_scipy(k, seed):
    A, B = _random_sdcp(k, seed)
    sol = flow.solve_sdcp(A, B)
    X = sol.X
    Y = A + np.einsum("ijkl,kl->ij", B, X)
    scale = np.abs(A).max()
    assert np.linalg.eigvalsh(X).min() >= -1e-12 * max(1.0, np.abs(X).max())
    assert np.linalg.eigvalsh(Y).min() >= -1e-10 * scale
    assert abs(np.sum(X * Y)) <= 1e-10 * scale * max(1.0, np.abs(X).max())
    assert sol.residual <= 1e-10
    np.testing.assert_allclose(X, _reference(A, B, k), atol=1e-6 * max(1.0, np.abs(X).max()))


def test_sdcp_inputs():
    assert not flow.solve_sdcp(np.eye(2), np.ones((2, 2, 2, 2))).X.any()  # A >= 0: X = 0
    with pytest.raises(ValueError, match="shape"):
        flow.solve_sdcp(np.eye(2), np.ones((2, 2)))
    with pytest.raises(ValueError, match="finite"):
        flow.solve_sdcp(np.array([[np.nan]]), np.ones((1, 1, 1, 1)))


def test_central_flow_inputs_and_progress():
    problem = Quadratic(np.array([1.0, 3.0]))
    with pytest.raises(ValueError, match="lr"):
        flow.central_flow(problem, np.ones(2), -1.0, 1.0)
    with pytest.raises(ValueError, match="t_end"):
        flow.central_flow(problem, np.ones(2), 0.5, 0.0)
    with pytest.raises(ValueError, match="times"):
        flow.central_flow(problem, np.ones(2), 0.5, 1.0, times=[2.0])
    with pytest.raises(ValueError, match="method"):
        flow.central_flow(problem, np.ones(2), 0.5, 1.0, method="Euler")
    with pytest.raises(ValueError):
        flow.central_flow(problem, np.ones(3), 0.5, 1.0)
    reports = []
    flow.central_flow(problem, np.ones(2), 0.5, 1.0, progress=lambda *r: reports.append(r))
    assert reports and reports[-1] == ("central", 100, 100)
    assert all(stage == "central" and total == 100 for stage, _, total in reports)
    cf = flow.central_flow(problem, np.ones(2), 0.5, 1.0)
    traj = eosfast.run(problem, eosfast.GD(lr=0.25), np.ones(2), steps=10)
    with pytest.raises(ValueError, match="2/lr"):
        flow.compare_central(cf, traj, window=4)
    with pytest.raises(TypeError):
        flow.compare_central(traj, traj)


def two_edge_toy():
    """L(x, z, s, y1, y2) = 1/2 a y1^2 + 1/2 b y2^2 - x, a = 1 + x^2 + z^2, b = 1 + x^2 + s^2.

    On y = 0 the top eigenvalues are a and b (eigenvectors e_y1, e_y2). From z0 > s0, a
    reaches 2/lr first; the flow slides on the circle x^2 + z^2 = R^2 (s fixed) until z = s0,
    where b reaches 2/lr too; then both are held: x = R cos(theta), z = s = R sin(theta)
    with R theta' = -sin(theta) / (1 + cos(theta)^2) (the projection of e_x on the curve's
    tangent) and tr X = 2 cos(theta) / (R (1 + cos(theta)^2)).
    """

    def loss_and_grad(w):
        x, z, s, y1, y2 = w
        a, b = 1 + x * x + z * z, 1 + x * x + s * s
        loss = 0.5 * a * y1 * y1 + 0.5 * b * y2 * y2 - x
        return loss, np.array(
            [x * (y1 * y1 + y2 * y2) - 1, z * y1 * y1, s * y2 * y2, a * y1, b * y2]
        )

    def hvp(w, v):
        x, z, s, y1, y2 = w
        a, b = 1 + x * x + z * z, 1 + x * x + s * s
        H = np.zeros((5, 5))
        H[0, 0], H[1, 1], H[2, 2] = y1 * y1 + y2 * y2, y1 * y1, y2 * y2
        H[0, 3] = H[3, 0] = 2 * x * y1
        H[0, 4] = H[4, 0] = 2 * x * y2
        H[1, 3] = H[3, 1] = 2 * z * y1
        H[2, 4] = H[4, 2] = 2 * s * y2
        H[3, 3], H[4, 4] = a, b
        return H @ v

    def third(w, u):
        x, z, s, y1, y2 = w
        ux, uz, us, u1, u2 = u
        return np.array(
            [
                4 * y1 * ux * u1 + 4 * y2 * ux * u2 + 2 * x * (u1 * u1 + u2 * u2),
                4 * y1 * uz * u1 + 2 * z * u1 * u1,
                4 * y2 * us * u2 + 2 * s * u2 * u2,
                2 * y1 * (ux * ux + uz * uz) + 4 * x * ux * u1 + 4 * z * uz * u1,
                2 * y2 * (ux * ux + us * us) + 4 * x * ux * u2 + 4 * s * us * u2,
            ]
        )

    return Callback(loss_and_grad, 5, hvp=hvp, third=third)


def test_two_eigenvalues_at_the_edge_against_solve_ivp():
    lr, x0, z0, s0 = 0.2, 0.5, 2.0, 1.0
    R = np.sqrt(2 / lr - 1)
    t1 = np.sqrt(R * R - z0 * z0) - x0
    th1 = np.arctan2(z0, np.sqrt(R * R - z0 * z0))
    th2 = np.arcsin(s0 / R)
    t2 = t1 + R * np.log(np.tan(th1 / 2) / np.tan(th2 / 2))
    t_end = 8.0
    ref = solve_ivp(
        lambda t, th: -np.sin(th) / (R * (1 + np.cos(th) ** 2)),
        (t2, t_end),
        [th2],
        method="DOP853",
        rtol=1e-13,
        atol=1e-15,
        dense_output=True,
    )
    times = np.linspace(0, t_end, 17)
    cf = flow.central_flow(
        two_edge_toy(), [x0, z0, s0, 0, 0], lr, t_end, times=times, rtol=1e-11, atol=1e-13
    )
    assert cf.entry_time == pytest.approx(t1, abs=1e-9)
    for n, t in enumerate(times):
        if t <= t1:
            state, edge = np.array([x0 + t, z0, s0, 0, 0]), 0
        elif t <= t2:
            th = 2 * np.arctan(np.tan(th1 / 2) * np.exp(-(t - t1) / R))
            state, edge = np.array([R * np.cos(th), R * np.sin(th), s0, 0, 0]), 1
        else:
            th = ref.sol(t)[0]
            state, edge = np.array([R * np.cos(th), R * np.sin(th), R * np.sin(th), 0, 0]), 2
            trace = 2 * np.cos(th) / (R * (1 + np.cos(th) ** 2))
            assert np.trace(cf.covariance[n]) == pytest.approx(trace, abs=1e-8)
            assert cf.predicted_loss[n] == pytest.approx(cf.loss[n] + trace / lr, abs=1e-8)
            np.testing.assert_allclose(cf.eigenvalues[n, :2], 2 / lr, rtol=1e-10)
        np.testing.assert_allclose(cf.states[n], state, rtol=0, atol=1e-8)
        assert cf.edge[n] == edge


def _readme_snippet() -> str:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## The central flow of GD at the edge of stability", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_digits_mlp_follows_window_averaged_gd(capsys):
    """The README's snippet, run verbatim: a one-hot 64-16-10 tanh MLP, MSE, 100 digits,
    lr = 0.25 (2/lr = 8), from the GD iterate at step 2000 (at the edge, after the first
    catapult), 800 more steps. Measured (2026-12-02): relative error of the predicted loss
    against GD's loss averaged over 100-step windows at most 2.1 %, while L at the flow's
    point alone is 4.5-9.2 % below; lambda_1 of the flow within 1e-6 of 2/lr; about 20 s."""
    namespace: dict = {}
    exec(compile(_readme_snippet(), "README.md", "exec"), namespace)
    lr, cf, cmp = 0.25, namespace["cf"], namespace["cmp"]
    assert capsys.readouterr().out.strip()
    assert cmp.window == 100 and cmp.steps.size > 600
    assert cmp.loss_error.max() < 0.03
    plain = np.abs(cmp.flow_loss - cmp.gd_loss) / cmp.gd_loss
    assert plain.min() > 0.03  # the oscillation term L + tr(X)/lr is what matches GD
    assert cf.entry_time < 5 * lr  # GD's iterate starts just below the edge
    on_edge = cf.times > cf.entry_time
    assert np.all(cf.edge[on_edge] >= 1)
    np.testing.assert_allclose(cf.sharpness[on_edge] * lr / 2, 1.0, atol=1e-5)
    assert cmp.gd_sharpness.size > 60  # 100-step windows of the sharpness every 10 steps
    np.testing.assert_allclose(cmp.gd_sharpness * lr / 2, 1.0, atol=0.02)
    assert cf.third_products > 0


def test_ctrl_c_propagates():
    """A KeyboardInterrupt inside an evaluation (Ctrl-C during a callback or an eigensolve)
    ends the flow at once, unchanged."""
    toy = sliding_toy()
    calls = []

    def loss_and_grad(p):
        calls.append(1)
        if len(calls) == 25:
            raise KeyboardInterrupt
        return toy.loss_and_grad(p)

    problem = Callback(loss_and_grad, 3, hvp=toy.hvp, third=toy.third)
    with pytest.raises(KeyboardInterrupt):
        flow.central_flow(problem, [0.5, 1.5, 0.0], 0.2, 6.0)
    assert len(calls) == 25
