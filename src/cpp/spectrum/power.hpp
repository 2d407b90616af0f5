// Power iteration with deflation, the field's baseline (as in PyHessian:
// Yao, Gholami, Keutzer & Mahoney 2020, Alg. 1), with a residual stopping rule.
//
// Iterates v <- P (H - shift I) v / ||.||, P projecting out the pairs already
// found, and converges to the eigenvalue of largest |lambda - shift| on the
// deflated space, at rate |lambda_2 - shift| / |lambda_1 - shift| per product
// (Golub & Van Loan 2013, sec. 7.3.1). shift = 0 gives the largest magnitude
// (which "LM"). For the largest algebraic ("LA") any shift <= lambda_min works;
// by default shift = -1.01 rho with rho = |lambda| of a loose largest-magnitude
// power iteration, so H - shift I is positive semidefinite (slower: the ratio
// is (lambda_2 + rho) / (lambda_1 + rho)). Eigenvalues are the Rayleigh
// quotients v^T H v of the unshifted H; a pair is converged when
// ||H v - theta v|| <= tol * scale, scale = the largest |theta| seen.
#pragma once

#include <cmath>
#include <limits>

#include "../core/block_ops.hpp"
#include "../core/interrupt.hpp"
#include "../core/random.hpp"
#include "operator_adapter.hpp"
#include "rayleigh_ritz.hpp"

namespace eosfast {

struct PowerOptions {
    Index k = 1;
    Which which = Which::LM;  // LM or LA
    double tol = 1e-6;
    Index max_iter = 1000;                                    // products per eigenpair
    double shift = std::numeric_limits<double>::quiet_NaN();  // NaN = 0 for LM, automatic for LA
    std::uint64_t seed = 0;
};

struct PowerResult {
    EigenResult eigen;
    double shift = 0.0;
};

namespace detail {
// One deflated power iteration; returns (theta, v, Hv) in the last arguments.
template <class Op>
bool power_pair(CountingOperator<Op>& H, const Matrix& U, double shift, double tol, Index max_iter,
                SplitMix64& rng, double& scale, double& theta, Vector& v, Vector& Hv)
{
    const Index n = H.rows();
    v.resize(n);
    Hv.resize(n);
    rng.fill_uniform(v);
    orthogonalize(U, v);
    v /= norm(v);
    for (Index it = 0; it < max_iter; ++it) {
        H.apply(v, Hv);
        theta = dot(v, Hv);
        scale = std::max(scale, std::abs(theta));
        Vector next = Hv - theta * v;
        if (norm(next) <= tol * scale) return true;
        if (it + 1 == max_iter) break;  // keep (v, Hv) consistent
        next = Hv - shift * v;
        orthogonalize(U, next);
        const double size = norm(next);
        if (!(size > 0)) {  // v is in the null space of H - shift I on the deflated space
            rng.fill_uniform(next);
            orthogonalize(U, next);
        }
        v = next / norm(next);
        check_interrupt();
    }
    return false;
}
}  // namespace detail

template <class Op>
PowerResult power_iteration(const Op& op, const PowerOptions& opt)
{
    const Index n = op.rows();
    require(opt.k >= 1 && opt.k <= n,
            "k must be between 1 and dim = " + std::to_string(n) + ", got " + std::to_string(opt.k));
    require(opt.which == Which::LM || opt.which == Which::LA,
            "power_iteration supports which = 'LM' or 'LA'");
    require(opt.tol > 0 && opt.tol < 1, "tol must be in (0, 1)");
    require(opt.max_iter >= 1, "max_iter must be at least 1");
    require(!std::isinf(opt.shift), "shift must be finite");
    CountingOperator<Op> H(op, std::numeric_limits<Index>::max());
    if (!operator_thread_safe(op)) probe_symmetry(H, opt.seed);
    SplitMix64 rng(opt.seed);
    double scale = 0.0, theta = 0.0;
    Vector v, Hv;
    PowerResult out;
    out.shift = std::isnan(opt.shift) ? 0.0 : opt.shift;
    if (opt.which == Which::LA && std::isnan(opt.shift)) {
        const Matrix none(n, 0);
        detail::power_pair(H, none, 0.0, 1e-3, opt.max_iter, rng, scale, theta, v, Hv);
        out.shift = -1.01 * std::abs(theta);
    }
    Matrix U(n, 0), HU(n, 0);
    Vector values(0);
    for (Index i = 0; i < opt.k; ++i) {
        detail::power_pair(H, U, out.shift, opt.tol, opt.max_iter, rng, scale, theta, v, Hv);
        U.conservativeResize(n, i + 1);
        HU.conservativeResize(n, i + 1);
        values.conservativeResize(i + 1);
        U.col(i) = v;
        HU.col(i) = Hv;
        values[i] = theta;
    }
    store_pairs(out.eigen, values, U, HU, opt.which, opt.tol * scale);
    out.eigen.matvecs = H.matvecs();
    return out;
}

}  // namespace eosfast
