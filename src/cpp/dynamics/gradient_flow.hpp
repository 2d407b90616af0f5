// The gradient flow dx/dt = -grad L(x): the one integrator of the library
// (gradient_flow in Python, and Phi(x) = lim_{t->inf} phi(x, t) of the flow layer).
//
// Dormand & Prince (1980) 5(4) with FSAL, the PI step-size controller, the
// stiffness test and the 4th-order dense output of Hairer, Norsett & Wanner,
// "Solving ODEs I" (2nd ed.), II.4-II.6 and the code DOPRI5. Requested times
// are produced by dense output or hit exactly by the step ends.
//
// End game (gtol > 0, after the last requested time): once the stiffness test
// fires (h rho(J) stuck at the stability boundary, which near a minimum with
// a wide Hessian spectrum makes explicit steps crawl), the remaining flow is
// finished by damped Newton on grad L(x) = 0, the steps from MINRES. MINRES from
// zero gives the minimum-norm step, so components along ker grad^2 L are kept and the result
// is the limit of the linearised flow, within O(|x - Phi(x)|^2) of Phi(x).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../core/interrupt.hpp"
#include "../core/minres.hpp"
#include "../core/vector_ops.hpp"
#include "../problems/problem.hpp"

namespace eosfast {

struct FlowOptions {
    double rtol = 1e-8;
    double atol = 1e-10;
    double gtol = 0.0;  // > 0: stop once |grad L| <= gtol (after the last requested time)
    Index max_steps = 1000000;
    double first_step = 0.0;  // 0: Hairer's starting-step heuristic
    double max_step = std::numeric_limits<double>::infinity();
    bool dense_output = true;  // false: step ends land exactly on the requested times
    bool endgame = true;       // Newton-CG end game (gtol > 0 only)
    Index newton_max_iter = 50;
    Index cg_max_iter = 0;  // 0: min(dim, 1000)
};

struct FlowResult {
    Vector x;        // final state
    double t = 0.0;  // integration time reached (the end game adds no time: its limit is t = inf)
    double loss = 0.0;
    double grad_norm = 0.0;
    bool converged = false;  // reached t_end, or |grad L| <= gtol
    std::string status;      // completed, converged, max_steps, step_size_underflow, diverged
    Index steps = 0, rejected = 0, grad_evals = 0, hvps = 0, newton_steps = 0;
    bool stiff = false;  // the stiffness test fired
    Vector times;        // the requested times ...
    Matrix states;       // ... and the states there, (dim, times)
};

namespace detail {

struct FlowEvaluator {
    const Problem& problem;
    Vector g;
    Index evals = 0;
    // k = -grad L(x); returns L(x).
    double operator()(const Vector& x, Vector& k)
    {
        const double value = problem.loss_and_grad(x, g);
        ++evals;
        k = -g;
        return value;
    }
};

// The Newton step: H d = -g by MINRES from d = 0. Its residual |g + H d| falls
// monotonically, so even a partial solve decreases the linear model of |grad L|
// (CG's residual may grow, and CG breaks down on the tiny negative eigenvalues
// the Hessian has just off a manifold of minimisers). Starting from zero keeps
// d in the Krylov space of g: no motion along ker grad^2 L.
inline Vector newton_direction(const Problem& problem, const Vector& x, const Vector& g, double tol,
                               Index max_iter, Index& hvps)
{
    const Index n = x.size();
    Vector d(n);
    Matrix Hv(n, 1);
    const Vector rhs = -g;
    const MinresResult solve = minres(
        [&](const Vector& v, Vector& out) {
            problem.hvp(x, v, Hv);
            out = Hv.col(0);
            check_interrupt();
        },
        rhs, tol, max_iter, d);
    hvps += solve.iterations;
    return d;
}

}  // namespace detail

// Integrates from x0 to t_end (may be +inf when gtol > 0), producing the
// states at the sorted, non-negative `times` (all <= t_end).
inline FlowResult gradient_flow(const Problem& problem, ConstVecRef x0, double t_end, const Vector& times,
                                const FlowOptions& opt)
{
    problem.check_dim(x0, "x0");
    require(opt.rtol > 0.0 && opt.atol >= 0.0, "rtol must be > 0 and atol >= 0");
    require(opt.gtol >= 0.0, "gtol must be >= 0");
    require(t_end >= 0.0 && !std::isnan(t_end), "t_end must be >= 0");
    require(std::isfinite(t_end) || opt.gtol > 0.0, "an infinite t_end needs gtol > 0");
    require(opt.max_steps >= 1, "max_steps must be >= 1");
    for (Index i = 0; i < times.size(); ++i) {
        require(times[i] >= 0.0 && times[i] <= t_end, "requested times must lie in [0, t_end]");
        require(i == 0 || times[i] >= times[i - 1], "requested times must be sorted");
    }

    // Dormand-Prince 5(4) tableau; b = row 7 (FSAL), e = b - b_hat.
    // (Nodes c = 0, 1/5, 3/10, 4/5, 8/9, 1, 1: the flow is autonomous, so only a, b, e enter.)
    static constexpr double a21 = 1.0 / 5;
    static constexpr double a31 = 3.0 / 40, a32 = 9.0 / 40;
    static constexpr double a41 = 44.0 / 45, a42 = -56.0 / 15, a43 = 32.0 / 9;
    static constexpr double a51 = 19372.0 / 6561, a52 = -25360.0 / 2187, a53 = 64448.0 / 6561,
                            a54 = -212.0 / 729;
    static constexpr double a61 = 9017.0 / 3168, a62 = -355.0 / 33, a63 = 46732.0 / 5247, a64 = 49.0 / 176,
                            a65 = -5103.0 / 18656;
    static constexpr double a71 = 35.0 / 384, a73 = 500.0 / 1113, a74 = 125.0 / 192, a75 = -2187.0 / 6784,
                            a76 = 11.0 / 84;
    static constexpr double e1 = 71.0 / 57600, e3 = -71.0 / 16695, e4 = 71.0 / 1920, e5 = -17253.0 / 339200,
                            e6 = 22.0 / 525, e7 = -1.0 / 40;
    // Dense output (Hairer's CONTD5).
    static constexpr double d1 = -12715105075.0 / 11282082432, d3 = 87487479700.0 / 32700410799,
                            d4 = -10690763975.0 / 1880347072, d5 = 701980252875.0 / 199316789632,
                            d6 = -1453857185.0 / 822651844, d7 = 69997945.0 / 29380423;

    const Index n = problem.dim();
    FlowResult res;
    res.times = times;
    res.states = Matrix::Constant(n, times.size(), std::numeric_limits<double>::quiet_NaN());
    detail::FlowEvaluator f{problem, Vector(n)};
    Vector x = x0, xn(n), y(n), tmp(n), k1(n), k2(n), k3(n), k4(n), k5(n), k6(n), k7(n);
    double loss = f(x, k1), t = 0.0;
    double gnorm = norm(k1);
    Index next = 0;
    while (next < times.size() && times[next] <= 0.0) res.states.col(next++) = x;

    auto rms_scaled = [&](const Vector& e, const Vector& a, const Vector& b) {
        tmp = e.array() / (opt.atol + opt.rtol * a.cwiseAbs().cwiseMax(b.cwiseAbs()).array());
        return std::sqrt(squared_norm(tmp) / static_cast<double>(n));
    };
    auto finish = [&](const std::string& status, bool ok) {
        res.x = x;
        res.t = t;
        res.loss = loss;
        res.grad_norm = gnorm;
        res.status = status;
        res.converged = ok;
        res.grad_evals = f.evals;
        return res;
    };
    if (!std::isfinite(loss) || !std::isfinite(gnorm)) return finish("diverged", false);

    double h = opt.first_step;
    if (h <= 0.0) {  // Hairer's starting step (II.4, p. 169)
        const Vector zero = Vector::Zero(n);
        const double dx = rms_scaled(x, x, zero), df = rms_scaled(k1, x, zero);
        double h0 = (dx < 1e-5 || df < 1e-5) ? 1e-6 : 0.01 * dx / df;
        if (std::isfinite(t_end)) h0 = std::min(h0, t_end);
        if (h0 > 0.0) {
            y = x + h0 * k1;
            f(y, k2);
            const double d2 = rms_scaled(Vector(k2 - k1), x, zero) / h0;
            const double big = std::max(df, d2);
            const double h1 = big <= 1e-15 ? std::max(1e-6, h0 * 1e-3) : std::pow(0.01 / big, 0.2);
            h = std::min(100.0 * h0, h1);
        } else {
            h = 1e-6;
        }
    }
    h = std::min(h, opt.max_step);

    const double safe = 0.9, beta = 0.04, expo1 = 0.2 - beta * 0.75, facc1 = 1.0 / 0.2, facc2 = 1.0 / 10.0;
    double facold = 1e-4;
    Index stiff_count = 0, nonstiff_count = 0;
    bool endgame_allowed = opt.endgame && opt.gtol > 0.0;
    const Index cg_max = opt.cg_max_iter > 0 ? opt.cg_max_iter : std::min<Index>(n, 1000);

    while (true) {
        const bool outputs_done = next >= times.size();
        if (opt.gtol > 0.0 && outputs_done && gnorm <= opt.gtol) return finish("converged", true);
        if (t >= t_end) return finish("completed", true);
        if (res.steps + res.rejected >= opt.max_steps) return finish("max_steps", false);
        check_interrupt();

        if (endgame_allowed && outputs_done && res.stiff) {
            // Damped Newton-CG on grad L = 0 (Armijo on |grad L|).
            bool progress = true;
            while (gnorm > opt.gtol && res.newton_steps < opt.newton_max_iter && progress) {
                const Vector g = -k1;
                const double forcing = std::min(0.5, std::sqrt(gnorm)) * gnorm;
                const Vector d = detail::newton_direction(problem, x, g, forcing, cg_max, res.hvps);
                progress = false;
                for (double alpha = 1.0; alpha >= 1.0 / 1024; alpha *= 0.5) {
                    xn = x + alpha * d;
                    const double ln = f(xn, k7);
                    const double gn = norm(k7);
                    if (std::isfinite(ln) && gn <= (1.0 - 1e-4 * alpha) * gnorm) {
                        x = xn, k1 = k7, loss = ln, gnorm = gn, progress = true;
                        break;
                    }
                }
                ++res.newton_steps;
                check_interrupt();
            }
            if (gnorm <= opt.gtol) return finish("converged", true);
            // The end game stalled (saddle, far from a minimum): back to the flow.
            endgame_allowed = false;
        }

        // Step size: never past t_end, nor past the next requested time without dense output.
        double target = t_end;
        if (!opt.dense_output && !outputs_done) target = times[next];
        bool last = false;
        if (t + 1.01 * h >= target) {
            h = target - t;
            last = true;
        }
        if (h <= 1e-14 * std::max(1.0, std::abs(t))) return finish("step_size_underflow", false);

        y = x + h * (a21 * k1);
        f(y, k2);
        y = x + h * (a31 * k1 + a32 * k2);
        f(y, k3);
        y = x + h * (a41 * k1 + a42 * k2 + a43 * k3);
        f(y, k4);
        y = x + h * (a51 * k1 + a52 * k2 + a53 * k3 + a54 * k4);
        f(y, k5);
        y = x + h * (a61 * k1 + a62 * k2 + a63 * k3 + a64 * k4 + a65 * k5);
        f(y, k6);
        xn = x + h * (a71 * k1 + a73 * k3 + a74 * k4 + a75 * k5 + a76 * k6);
        const double loss_new = f(xn, k7);
        tmp = h * (e1 * k1 + e3 * k3 + e4 * k4 + e5 * k5 + e6 * k6 + e7 * k7);
        const Vector err = tmp;
        double err_norm = rms_scaled(err, x, xn);
        if (!std::isfinite(err_norm) || !std::isfinite(loss_new)) err_norm = 1e10;

        const double fac11 = std::pow(err_norm, expo1);
        if (err_norm <= 1.0) {
            ++res.steps;
            // Stiffness test: h |k7 - k6| / |xn - y| estimates h rho(J) (both stages at t + h).
            tmp = k7 - k6;
            const double num = squared_norm(tmp);
            tmp = xn - y;
            const double den = squared_norm(tmp);
            if (den > 0.0 && h * std::sqrt(num / den) > 3.25) {
                nonstiff_count = 0;
                if (++stiff_count >= 15) res.stiff = true;
            } else if (++nonstiff_count >= 6) {
                stiff_count = 0;
            }
            // Dense output on (t, t + h]: theta in (0, 1].
            const double t_new = last ? target : t + h;
            if (next < times.size() && times[next] <= t_new) {
                const Vector ydiff = xn - x;
                const Vector bspl = h * k1 - ydiff;
                const Vector r4 = ydiff - h * k7 - bspl;
                const Vector r5 = h * (d1 * k1 + d3 * k3 + d4 * k4 + d5 * k5 + d6 * k6 + d7 * k7);
                while (next < times.size() && times[next] <= t_new) {
                    if (times[next] == t_new) {
                        res.states.col(next++) = xn;
                        continue;
                    }
                    const double th = (times[next] - t) / h, th1 = 1.0 - th;
                    res.states.col(next++) = x + th * (ydiff + th1 * (bspl + th * (r4 + th1 * r5)));
                }
            }
            x = xn;
            k1 = k7;
            loss = loss_new;
            gnorm = norm(k1);
            t = t_new;
            // PI controller (Hairer's DOPRI5).
            double fac = fac11 / std::pow(facold, beta);
            fac = std::max(facc2, std::min(facc1, fac / safe));
            facold = std::max(err_norm, 1e-4);
            h = std::min(h / fac, opt.max_step);
        } else {
            ++res.rejected;
            h /= std::min(facc1, fac11 / safe);
        }
    }
}

}  // namespace eosfast
