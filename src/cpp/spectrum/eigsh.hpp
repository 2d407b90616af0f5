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
// deflated by K: what K captured (the wanted pairs and the next ones) is gone
// from that spectrum, so a missed copy is its extreme eigenvalue by a wide
// margin and stands out within a few products, and without one the extreme
// Ritz values settle fast. When that look finds a candidate (K deflation
// leaves no eigenpairs of H to converge), or the operator is too small for it
// (fewer than ncv directions outside K), the full check runs: Lanczos
// from a fresh random vector on H deflated by the locked pairs (Saad 2011,
// sec. 4.2), whose spectrum is everything not locked. When an extreme Ritz
// value there beats the worst locked value by more than the tolerance, the
// same run converges it, it replaces the worst pair, and the check repeats
// from a new random vector. A final Rayleigh-Ritz on the locked block removes
// the small coupling deflation leaves between pairs.
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

// Lanczos on a started basis, deflated by the locked eigenvectors, until an
// extreme Ritz value would displace one of the `locked` values under `which`
// by more than the tolerance (returns true, and whether it sits at the top
// end), or it is settled that none will (false). At most `steps` products; a
// basis that holds the whole complement of the locked vectors is run until
// it is exhausted (its Ritz values are then exact), a larger one stops when
// the extreme Ritz values have converged to well within their distance from
// the locked values (an end that cannot compete is settled).
template <class Op>
bool find_missed(CountingOperator<Op>& op, KrylovBasis& basis, Index steps, bool whole, const Vector& locked,
                 Which which, double tol, double& scale, bool& top)
{
    Vector theta, est;
    Matrix S;
    for (Index step = 0; step < steps && basis.pending() > 0 && basis.has_room() && op.affords(1); ++step) {
        op.apply(basis.pending_vectors(), basis.product_slot());
        basis.absorb();
        check_interrupt();
        basis.ritz(theta, S, est);
        scale = std::max(scale, theta.cwiseAbs().maxCoeff());
        const Index p = theta.size();
        const double slack = tol * scale;
        const double m_top = competing_margin(locked, which, theta[p - 1], true);
        const double m_bottom = competing_margin(locked, which, theta[0], false);
        if (m_top > slack || m_bottom > slack) {
            top = m_top >= m_bottom;
            return true;
        }
        auto settled = [&](double margin, double estimate) {
            return !std::isfinite(margin) || estimate <= std::max(0.1 * -margin, slack);
        };
        if (!whole && p >= 3 && settled(m_top, est[p - 1]) && settled(m_bottom, est[0])) return false;
    }
    return false;
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

}  // namespace detail

template <class Op>
EigenResult eigsh(const Op& op, const EigshOptions& opt, ConstMatRef v0)
{
    const Index n = op.rows();
    require(opt.k >= 1 && opt.k <= n,
            "k must be between 1 and dim = " + std::to_string(n) + ", got " + std::to_string(opt.k));
    require(opt.tol > 0 && opt.tol < 1, "tol must be in (0, 1)");
    require(opt.block >= 1, "block must be at least 1");
    require(v0.cols() == 0 || v0.rows() == n, "v0 must have dim = " + std::to_string(n) + " rows");
    const Index block = std::min(std::max(opt.block, v0.cols()), n);
    const Index ncv = detail::default_ncv(n, opt.k, block, opt.ncv);
    CountingOperator<Op> H(op, detail::default_budget(ncv, opt.max_matvecs));
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
    bool check = (opt.k > 1 || v0.cols() > 0) && run.all_converged;
    const Index krylov = main_basis->processed() + main_basis->pending();
    if (check && n - krylov > ncv) {
        const Index steps = std::min<Index>(10, ncv);
        KrylovBasis basis(n, steps, 1, main_basis->span(), rng);
        basis.start(none);
        bool top = true;
        check = detail::find_missed(H, basis, steps, false, values, opt.which, opt.tol, scale, top);
    }
    main_basis.reset();
    for (Index round = 0; check && Y.cols() < n && round < n; ++round) {
        // A random start on the complement of the locked vectors. A complement
        // that fits into one basis is processed whole; on a larger one a
        // missed eigenvalue, the extreme one there, dominates within a few
        // steps (Saad 2011, ch. 6), so 10 steps are given to find it.
        const Index free = n - Y.cols(), room = std::min(ncv, free);
        const bool whole = free <= ncv;
        LanczosRun extra;
        {
            KrylovBasis basis(n, room, 1, Y, rng);
            basis.start(none);
            bool top = true;
            const Index steps = whole ? free : std::min<Index>(10, room);
            if (!detail::find_missed(H, basis, steps, whole, values, opt.which, opt.tol, scale, top)) break;
            // Converge the candidate in the same basis and lock it; the worst
            // pair is dropped so k remain.
            const Which end = opt.which == Which::LM ? Which::LM : (top ? Which::LA : Which::SA);
            extra = lanczos_run(H, basis, 1, end, opt.tol, scale);
        }
        result.restarts += extra.restarts;
        if (!extra.all_converged) break;
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
    }
    result.matvecs = H.matvecs();
    return result;
}

}  // namespace eosfast
