// eigsh: k eigenpairs of a symmetric operator by thick-restart Lanczos, with
// every copy of a repeated eigenvalue found.
//
// A single-vector Krylov space holds one direction of each eigenspace, so a
// plain Lanczos run returns one copy of a repeated eigenvalue (Parlett 1998,
// sec. 13.1). After the first run converges, a check looks for what it cannot
// see: Lanczos from a fresh random vector on H compressed to the orthogonal
// complement of everything the run spanned. A missed copy is an exact
// eigenvector of that compression and surfaces fast; when a Ritz value there
// beats the k-th found one by more than the tolerance, a run deflated by the
// locked pairs (Saad 2011, sec. 4.2) converges it, it replaces the worst
// pair, and the check repeats. A final Rayleigh-Ritz on the locked block
// removes the small coupling deflation leaves between pairs.
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

// Looks for an eigenvalue of H on the complement of the orthonormal columns D
// that would displace one of `locked` under `which`, by Lanczos from a random
// vector. A complement of at most `capacity` dimensions is processed whole
// (the Ritz values are then its exact eigenvalues); a larger one gets at most
// 10 steps (a missed copy is an exact eigenvector of the compression,
// separated from the rest there, and dominates within a few steps). Returns
// true and the candidate's Ritz vector, and whether it sits at the top end.
template <class Op>
bool find_missed(CountingOperator<Op>& op, const Matrix& D, const Vector& locked, Which which, double tol,
                 Index capacity, SplitMix64& rng, double& scale, Vector& candidate, bool& top)
{
    const Index n = op.rows(), free = n - D.cols();
    const bool whole = free <= capacity;
    const Index room = whole ? free : std::min<Index>(10, capacity);
    if (room <= 0) return false;
    KrylovBasis basis(n, room, 1, D, rng, scale);
    basis.start(Matrix(n, 0));
    Vector theta, est;
    Matrix S;
    while (basis.pending() > 0 && basis.has_room() && op.affords(1)) {
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
            Matrix s = S.col(top ? p - 1 : 0), y(n, 1), hy(n, 1);
            basis.ritz_vectors(s, y, hy);
            candidate = y.col(0);
            return true;
        }
        // Settled (a large complement only): after a few steps (a separated
        // missed eigenvalue dominates the Krylov space by then), the extreme
        // Ritz value has converged to well within its distance from the
        // locked values (an end that cannot compete is settled).
        auto settled = [&](double margin, double estimate) {
            return !std::isfinite(margin) || estimate <= std::max(0.1 * -margin, slack);
        };
        if (!whole && p >= 3 && settled(m_top, est[p - 1]) && settled(m_bottom, est[0])) return false;
    }
    return false;
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
    auto basis = std::make_unique<KrylovBasis>(n, ncv, block, none, rng);
    basis->start(v0);
    LanczosRun run = lanczos_run(H, *basis, opt.k, opt.which, opt.tol, scale);
    result.restarts += run.restarts;
    Matrix Y = run.vectors, HY = run.products;
    Vector values = run.values;

    // The check for missed copies, once the run converged. With k = 1 and a
    // random start there is nothing to miss: another copy of the top
    // eigenvalue would not change the answer.
    Matrix D = basis->processed_vectors();
    basis.reset();
    const bool check = opt.k > 1 || v0.cols() > 0;
    // Each round locks a pair orthogonal to the locked ones and D grows by one
    // column, so n rounds are more than enough.
    for (Index round = 0; check && run.all_converged && D.cols() < n && round < n; ++round) {
        Vector candidate;
        bool top = true;
        if (!detail::find_missed(H, D, values, opt.which, opt.tol, ncv, rng, scale, candidate, top)) break;
        const Which end = opt.which == Which::LM ? Which::LM : (top ? Which::LA : Which::SA);
        const Index room = std::min(ncv, n - Y.cols());
        if (room < 1) break;
        KrylovBasis deflated(n, room, 1, Y, rng, scale);
        deflated.start(candidate);
        LanczosRun extra = lanczos_run(H, deflated, 1, end, opt.tol, scale);
        result.restarts += extra.restarts;
        if (!extra.all_converged) break;
        // Lock the new pair; drop the worst so k remain. The next check looks
        // at the complement of D and the new vector: the copies still missed
        // are orthogonal to both. (Not the deflated run's whole Krylov space:
        // it may hold copies of other wanted eigenvalues, none of them locked.)
        Vector added = extra.vectors.col(0);
        const Norms left = orthogonalize(D, added);
        const bool grows = left.after > 1e-8 * left.before && D.cols() < n;
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
        if (grows) {
            Matrix D_next(n, D.cols() + 1);
            D_next << D, added / left.after;
            D.swap(D_next);
        }
    }

    if (Y.cols() > 0) {
        values = rayleigh_ritz_block(Y, HY);
        store_pairs(result, values, Y, HY, opt.which, opt.tol * scale);
    }
    result.matvecs = H.matvecs();
    return result;
}

}  // namespace eosfast
