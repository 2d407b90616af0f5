// eigsh: k eigenpairs of a symmetric operator by thick-restart Lanczos, with
// every copy of a repeated eigenvalue found.
//
// A single-vector Krylov space holds one direction of each eigenspace, so a
// plain Lanczos run returns one copy of a repeated eigenvalue (Parlett 1998,
// sec. 13.1); after a breakdown (an invariant Krylov space, common on small
// or low-rank operators) its Ritz pairs are exact and it stops with the copies
// it cannot see. After the first run converges, a check looks for them.
// Every direction the run could not see is orthogonal to its whole Krylov
// space K (a second copy of an eigenvalue is orthogonal to the one copy K
// holds), so a first look runs Lanczos from a fresh random vector on H
// deflated by K: what K captured is gone from that spectrum, so on a well
// separated spectrum a missed copy stands out within a few products, and
// without one the extreme Ritz values settle fast. A look that finds a
// candidate, or cannot decide within its 10 steps (a missed copy close to the
// next eigenvalue emerges slowly), or an operator too small for it, hands over
// to the full check: thick-restarted Lanczos from a fresh random vector on H
// deflated by the locked pairs (Saad 2011, sec. 4.2), whose spectrum is
// everything not locked, run until its extreme Ritz values settle (see
// kSettled) or one beats the worst locked value by more than the tolerance;
// then the same run converges it, it replaces the worst pair, and the check
// repeats from a new random vector. A check that runs out of budget leaves
// every pair unconfirmed (converged = false). A final Rayleigh-Ritz on the
// locked block removes the small coupling deflation leaves between pairs.
// The operator is presented scaled by a power of two when its size is far
// from 1 (ScaledOperator), so the answer does not depend on its scale.
//
// Smallest magnitude (SM) is interior to the spectrum, where Lanczos without
// an inverse converges slowly and not from one side. eigsh finds it as the
// bottom end (SA) of H^2, whose eigenvalues are lambda^2 (so the search,
// including the check for copies, is an extreme-eigenvalue search again),
// and rotates the result by a Rayleigh-Ritz with H, which separates +-lambda
// (one eigenvalue of H^2). The price: two products per step, and relative
// gaps that shrink to (lambda_{k+1}^2 - lambda_k^2) / lambda_max^2.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "lanczos.hpp"
#include "rayleigh_ritz.hpp"

namespace eosfast {

struct EigshOptions {
    Index k = 1;
    Which which = Which::LA;
    double tol = 1e-8;
    Index ncv = 0;          // processed basis size; 0 = max(2k + 2 block, 20), at most dim
    Index block = 1;        // pending block size (raised to the columns of v0)
    Index max_matvecs = 0;  // 0 = automatic
    std::uint64_t seed = 0;
    bool check_copies = true;  // look for copies the Krylov space missed (false: as ARPACK)
};

namespace detail {

inline Index default_ncv(Index n, Index k, Index block, Index ncv)
{
    if (ncv <= 0) ncv = std::max<Index>(2 * k + 2 * block, 20);
    ncv = std::max(ncv, k + block);
    return std::min(ncv, n);
}

inline Index default_budget(Index ncv, Index max_matvecs)
{
    return max_matvecs > 0 ? max_matvecs : std::max<Index>(2000, 200 * ncv);
}

// How close an extreme Ritz value must be to an eigenvalue (residual
// estimate over its distance to the worst locked value) before a look
// concludes that nothing above it was missed. A Ritz vector with residual r at
// distance d below a missed eigenvalue has a component at most r / d along
// it, and a random start has about 1/sqrt(n) there, so a loose rule (0.1)
// can settle before the missed vector has been amplified at all: it did on
// 1 of 400 stress cases (multiplicity 4, gap 1.8e-3, n = 66); 1e-2 and 1e-3
// missed none, 1e-3 costs 2 % more products in that test.
constexpr double kSettled = 1e-3;

// What a look for missed eigenvalues concluded.
enum class Missed {
    none,          // the extreme Ritz values settled below the locked ones
    found_top,     // a Ritz value at the top end displaces a locked value
    found_bottom,  // likewise at the bottom end
    undecided      // the step limit or the budget ran out first
};

// Lanczos (thick-restarted when the basis fills) on a started basis,
// deflated by the locked eigenvectors, until an extreme Ritz value would
// displace one of the `locked` values under `which` by more than the
// tolerance, or the extreme Ritz values at every end that could compete have
// settled: their residual estimate is within kSettled of their distance to
// the worst locked value (or the tolerance), so they are eigenvalues of the
// deflated operator that stay below it. Ritz values approach the extreme
// eigenvalues monotonically from inside, so while they move a missed copy can
// still emerge: a look that runs out of steps (`max_steps` Rayleigh-Ritz
// steps) or of budget is undecided, never "none". A basis that spans the
// whole deflated space ends with exact Ritz values, hence a verdict.
template <class Op>
Missed find_missed(CountingOperator<Op>& op, KrylovBasis& basis, Index max_steps, const Vector& locked,
                   Which which, double tol, double& scale, Index& restarts)
{
    // The ends that can compete under `which`, watched by one Lanczos run.
    const Which watch = which == Which::LA ? Which::LA : (which == Which::SA ? Which::SA : Which::BE);
    const Index ends = watch == Which::BE ? 2 : 1;
    Missed verdict = Missed::undecided;
    Index steps = 0;
    auto monitor = [&](const Vector& theta, const Vector& est) {
        const Index p = theta.size();
        const double slack = tol * scale;
        const double m_top = competing_margin(locked, which, theta[p - 1], true);
        const double m_bottom = competing_margin(locked, which, theta[0], false);
        if (m_top > slack || m_bottom > slack) {
            verdict = m_top >= m_bottom ? Missed::found_top : Missed::found_bottom;
            return true;
        }
        auto settled = [&](double margin, double estimate) {
            return !std::isfinite(margin) || estimate <= std::max(kSettled * -margin, slack);
        };
        if ((p >= 3 || basis.pending() == 0) && settled(m_top, est[p - 1]) && settled(m_bottom, est[0])) {
            verdict = Missed::none;
            return true;
        }
        return ++steps >= max_steps;
    };
    // tol 0: only the monitor (or the budget, or exhaustion) ends the run.
    const LanczosRun run = lanczos_run(op, basis, ends, watch, 0.0, scale, 0.0, monitor);
    restarts += run.restarts;
    if (verdict == Missed::undecided && run.all_converged) {
        // Exact pairs (residual 0, e.g. on a zero operator) end the run before
        // the monitor's three steps: decide on them.
        verdict = Missed::none;
        const double slack = tol * scale;
        for (Index j = 0; j < run.values.size(); ++j) {
            const bool top = watch == Which::LA || (watch == Which::BE && j == 0);
            if (competing_margin(locked, which, run.values[j], top) > slack)
                verdict = top ? Missed::found_top : Missed::found_bottom;
        }
    }
    return verdict;
}

// One Rayleigh-Ritz step on span[Y, R], R = H Y - Y diag(values) the
// residuals (a block Davidson step without preconditioner, Saad 2011,
// ch. 11): the k wanted Ritz pairs replace (values, Y, HY). Costs a product
// per residual column. Used when every pair converged on its own but the
// final Rayleigh-Ritz mixed pairs of a repeated eigenvalue (any rotation
// within it is a valid one) and added up their residuals.
template <class Op>
void refine_pairs(CountingOperator<Op>& op, Which which, Vector& values, Matrix& Y, Matrix& HY)
{
    const Index n = Y.rows(), k = Y.cols();
    Matrix Z(n, 2 * k);
    Z.leftCols(k) = Y;
    Index m = k;
    for (Index j = 0; j < k; ++j) {
        auto r = Z.col(m);
        r = HY.col(j) - values[j] * Y.col(j);
        const Norms norms = orthogonalize(Z.leftCols(m), r);
        if (norms.after > 1e-8 * norms.before && norms.after > 0) {
            r /= norms.after;
            ++m;
        }
    }
    if (m == k || !op.affords(m - k)) return;
    Matrix HZ(n, m);
    HZ.leftCols(k) = HY;
    op.apply(Z.middleCols(k, m - k), HZ.middleCols(k, m - k));
    Matrix Zm = Z.leftCols(m);
    const Vector theta = rayleigh_ritz_block(Zm, HZ);
    const auto keep = select_wanted(theta, k, which);
    for (Index j = 0; j < k; ++j) {
        const Index i = keep[static_cast<size_t>(j)];
        values[j] = theta[i];
        Y.col(j) = Zm.col(i);
        HY.col(j) = HZ.col(i);
    }
}

// H^2, one product of H after another (SM, see the top of the file).
template <class Op>
class SquaredOperator {
public:
    explicit SquaredOperator(const Op& op) : m_op(op) {}
    Index rows() const { return m_op.rows(); }
    bool thread_safe() const { return operator_thread_safe(m_op); }
    void apply(ConstMatRef X, MatRef out) const
    {
        Matrix once(X.rows(), X.cols());
        m_op.apply(X, once);
        m_op.apply(once, out);
    }

private:
    const Op& m_op;
};

inline void check_options(Index n, const EigshOptions& opt, ConstMatRef v0)
{
    require(opt.k >= 1 && opt.k <= n,
            "k must be between 1 and dim = " + std::to_string(n) + ", got " + std::to_string(opt.k));
    require(opt.tol > 0 && opt.tol < 1, "tol must be in (0, 1)");
    require(opt.block >= 1, "block must be at least 1");
    require(v0.cols() == 0 || v0.rows() == n, "v0 must have dim = " + std::to_string(n) + " rows");
}

// eigsh for an end of the spectrum (every `which` but SM); `scale_out`, when
// given, receives the estimate of ||H|| the convergence tests used.
template <class Op>
EigenResult eigsh_extreme(const Op& op, const EigshOptions& opt, ConstMatRef v0, double* scale_out = nullptr)
{
    const Index n = op.rows();
    check_options(n, opt, v0);
    require(opt.which != Which::SM, "eigsh_extreme: SM is not an end of the spectrum");
    const Index block = std::min(std::max(opt.block, v0.cols()), n);
    const Index ncv = detail::default_ncv(n, opt.k, block, opt.ncv);
    const ScaledOperator<Op> scaled(op);
    CountingOperator<ScaledOperator<Op>> H(scaled, detail::default_budget(ncv, opt.max_matvecs));
    if (!operator_thread_safe(op)) probe_symmetry(H, opt.seed);
    SplitMix64 rng(opt.seed);
    double scale = 0.0;
    EigenResult result;

    // The main run.
    const Matrix none(n, 0);
    LanczosRun run;
    auto main_basis = std::make_unique<KrylovBasis>(n, ncv, block, none, rng);
    main_basis->start(v0);
    run = lanczos_run(H, *main_basis, opt.k, opt.which, opt.tol, scale);
    result.restarts += run.restarts;
    Matrix Y = run.vectors, HY = run.products;
    Vector values = run.values;

    // The check for missed copies, once the run converged. With k = 1 and a
    // random start there is nothing to miss: another copy of the top
    // eigenvalue would not change the answer. Each round locks one more pair
    // orthogonal to the locked ones, so fewer than n rounds are needed.
    bool check = opt.check_copies && (opt.k > 1 || v0.cols() > 0) && run.all_converged;
    bool uncertain = false;  // the check could not decide: no pair is confirmed
    const Index krylov = main_basis->processed() + main_basis->pending();
    if (check && n - krylov > ncv) {
        // The first look, on H deflated by the main Krylov space; a look that
        // cannot decide within its 10 steps hands over to the full check.
        const Index steps = std::min<Index>(10, ncv);
        KrylovBasis basis(n, steps, 1, main_basis->span(), rng);
        basis.start(none);
        check = detail::find_missed(H, basis, steps, values, opt.which, opt.tol, scale, result.restarts) !=
                detail::Missed::none;
    }
    main_basis.reset();
    for (Index round = 0; check && Y.cols() < n && round < n; ++round) {
        // A random start on the complement of the locked vectors. A complement
        // that fits into one basis is processed whole (its Ritz values end
        // exact); a larger one is thick-restarted until its extreme Ritz
        // values settle or one displaces a locked value (a missed eigenvalue
        // is the extreme one there, Saad 2011, ch. 6).
        const Index free = n - Y.cols(), room = std::min(ncv, free);
        LanczosRun extra;
        {
            KrylovBasis basis(n, room, 1, Y, rng);
            basis.start(none);
            const auto verdict = detail::find_missed(H, basis, std::numeric_limits<Index>::max(), values, opt.which,
                                                     opt.tol, scale, result.restarts);
            if (verdict == detail::Missed::none) break;
            if (verdict == detail::Missed::undecided) {
                uncertain = true;
                break;
            }
            // Converge the candidate in the same basis and lock it; the worst
            // pair is dropped so k remain.
            const bool top = verdict == detail::Missed::found_top;
            const Which end = opt.which == Which::LM ? Which::LM : (top ? Which::LA : Which::SA);
            extra = lanczos_run(H, basis, 1, end, opt.tol, scale);
        }
        result.restarts += extra.restarts;
        if (!extra.all_converged) {
            uncertain = true;
            break;
        }
        Vector all(values.size() + 1);
        all << values, extra.values;
        Matrix Yall(n, Y.cols() + 1), HYall(n, Y.cols() + 1);
        Yall << Y, extra.vectors;
        HYall << HY, extra.products;
        const auto keep = select_wanted(all, opt.k, opt.which);
        Y.resize(n, opt.k);
        HY.resize(n, opt.k);
        values.resize(opt.k);
        for (Index j = 0; j < opt.k; ++j) {
            const Index i = keep[static_cast<size_t>(j)];
            Y.col(j) = Yall.col(i);
            HY.col(j) = HYall.col(i);
            values[j] = all[i];
        }
    }

    if (Y.cols() > 0) {
        values = rayleigh_ritz_block(Y, HY);
        if (run.all_converged) {
            double worst = 0.0;
            for (Index j = 0; j < Y.cols(); ++j) {
                Vector r = HY.col(j) - values[j] * Y.col(j);
                worst = std::max(worst, norm(r));
            }
            if (worst > opt.tol * scale) detail::refine_pairs(H, opt.which, values, Y, HY);
        }
        store_pairs(result, values, Y, HY, opt.which, opt.tol * scale);
        if (uncertain) std::fill(result.converged.begin(), result.converged.end(), 0);
        // Back to the operator's own scale (exact: a power of two).
        result.eigenvalues /= scaled.scale();
        result.residuals /= scaled.scale();
    }
    result.matvecs = H.matvecs();
    if (scale_out) *scale_out = scale / scaled.scale();
    return result;
}

// SM: the SA pairs of H^2, rotated by a Rayleigh-Ritz with H. H is scaled
// first, so H^2 neither underflows nor overflows. The H^2 run converges to
// tol^2 (at least 1e-14, near rounding for H^2): a residual r of H^2 along
// an eigenvalue lambda_i of H leaves about r / |lambda_i + lambda| in H,
// large when lambda is small. +-lambda are one eigenvalue of H^2, so a cut
// after k pairs can split them and leave a mixture with a Rayleigh quotient
// in between, smaller in magnitude than either: the H^2 run takes pairs
// until the last is clearly above the k-th (kSplit of ||H||^2), so the
// Rayleigh-Ritz sees whole eigenspaces, and the k of smallest |theta| are
// kept. Each pair's flag is its own true residual in H against tol * ||H||.
constexpr double kSplit = 1e-6;

template <class Op>
EigenResult eigsh_smallest_magnitude(const Op& op, const EigshOptions& opt, ConstMatRef v0)
{
    const Index n = op.rows();
    check_options(n, opt, v0);
    const ScaledOperator<Op> scaled(op);
    const SquaredOperator<ScaledOperator<Op>> squared(scaled);
    EigshOptions sq = opt;
    sq.which = Which::SA;
    sq.tol = std::max(opt.tol * opt.tol, 1e-14);
    EigenResult result, inner;
    double scale_sq = 0.0;
    for (Index wanted = std::min(n, opt.k + 1);; wanted = std::min(n, 2 * wanted)) {
        sq.k = wanted;
        if (opt.max_matvecs > 0) {
            const Index left = opt.max_matvecs - result.matvecs - wanted;
            if (left < 2) break;
            sq.max_matvecs = left / 2;
        }
        inner = eigsh_extreme(squared, sq, v0, &scale_sq);
        result.restarts += inner.restarts;
        result.matvecs += 2 * inner.matvecs;
        const Vector& mu = inner.eigenvalues;  // ascending
        if (wanted == n || mu.size() < wanted || mu[wanted - 1] - mu[opt.k - 1] > kSplit * scale_sq) break;
    }
    const Index m = inner.eigenvectors.cols();
    if (m == 0) return result;
    CountingOperator<ScaledOperator<Op>> H(scaled, m);
    Matrix Y = inner.eigenvectors, HY(n, m);
    H.apply(Y, HY);
    result.matvecs += m;
    const Vector values = rayleigh_ritz_block(Y, HY);
    const auto keep = select_wanted(values, std::min(opt.k, m), Which::SM);
    const Index k = static_cast<Index>(keep.size());
    Matrix Yk(n, k), HYk(n, k);
    Vector vk(k);
    for (Index j = 0; j < k; ++j) {
        const Index i = keep[static_cast<size_t>(j)];
        Yk.col(j) = Y.col(i);
        HYk.col(j) = HY.col(i);
        vk[j] = values[i];
    }
    // scale_sq estimates ||H||^2 in the scaled units of `scaled`.
    const double scale = std::sqrt(scale_sq);
    store_pairs(result, vk, Yk, HYk, Which::SM, opt.tol * scale);
    // No inner pair converged, or the copy check could not decide: none is confirmed.
    if (std::none_of(inner.converged.begin(), inner.converged.end(), [](char c) { return c != 0; }))
        std::fill(result.converged.begin(), result.converged.end(), 0);
    result.eigenvalues /= scaled.scale();
    result.residuals /= scaled.scale();
    return result;
}

}  // namespace detail

template <class Op>
EigenResult eigsh(const Op& op, const EigshOptions& opt, ConstMatRef v0)
{
    if (opt.which == Which::SM) return detail::eigsh_smallest_magnitude(op, opt, v0);
    return detail::eigsh_extreme(op, opt, v0);
}

}  // namespace eosfast
