// One thick-restart Lanczos run (Wu & Simon 2000) on a KrylovBasis: expand
// by the pending block, test the wanted Ritz pairs, restart with the best
// Ritz vectors when the basis is full.
//
// Convergence per pair: ||H y - theta y|| <= tol * scale, scale = the largest
// |Ritz value| seen (an estimate of ||H||). The residual estimate ||B s|| is
// tested after every expansion; pairs that pass it are checked on the true
// residual from the stored products W s - theta V s before they count (with
// its components along a deflation block removed: a deflated run converges
// pairs of the deflated operator).
//
// With value_tol > 0 a pair also counts as converged when its eigenvalue
// error bound r^2 / delta <= value_tol * scale (Kato-Temple; Parlett, The
// Symmetric Eigenvalue Problem, thm. 11.7.1), delta a conservative estimate
// of the distance from theta to the rest of the spectrum: the distance to the
// nearest other Ritz value less that value's residual estimate, less r (Ritz
// gaps overestimate the true gap). The rule applies only when delta > 0 and
// the adjacent Ritz values are resolved (residual estimate <= kResolved times
// their distance to theta): Lanczos Ritz values converge from the ends of the
// spectrum inwards, so an unresolved neighbour (early in a warm run, when the
// second Ritz value is still a mixture far below lambda_2) says nothing about
// the gap. It cannot see eigenvalues the basis has not found.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../core/interrupt.hpp"
#include "krylov_basis.hpp"
#include "operator_adapter.hpp"
#include "which.hpp"

namespace eosfast {

struct LanczosRun {
    Vector values;    // (w) wanted Ritz values, in order of preference
    Matrix vectors;   // (n, w)
    Matrix products;  // (n, w) H vectors
    Vector residuals;
    std::vector<char> converged;
    bool all_converged = false;
    Index restarts = 0;
};

namespace detail {
constexpr double kResolved = 0.25;

// Ritz vectors kept at a thick restart: the wanted ones plus min(nconv,
// (capacity - wanted) / 2) more, nconv the wanted pairs already converged;
// for one wanted pair half the basis (ARPACK's dsaup2 adjustment of nev,
// Lehoucq & Sorensen 1996; Wu & Simon sec. 3 discuss the trade-off: more
// kept vectors help the wanted ones converge, fewer leave room for new ones).
inline Index restart_keep(Index wanted, Index converged, Index processed, Index capacity, Index block)
{
    Index keep = wanted + std::min(converged, (capacity - wanted) / 2);
    if (wanted == 1) keep = capacity >= 6 ? capacity / 2 : 2;
    return std::max<Index>(1, std::min({keep, processed - 1, capacity - block}));
}
}  // namespace detail

namespace detail {
struct NoMonitor {
    bool operator()(const Vector&, const Vector&) const { return false; }
};
}  // namespace detail

// Runs until the `wanted` pairs preferred by `which` converge, the operator's
// budget is spent, the space is exhausted, or `monitor(theta, estimates)`
// (called after every Rayleigh-Ritz on an expanded basis, theta ascending)
// returns true. The basis must be started.
template <class Op, class Monitor = detail::NoMonitor>
LanczosRun lanczos_run(CountingOperator<Op>& op, KrylovBasis& basis, Index wanted, Which which, double tol,
                       double& scale, double value_tol = 0.0, Monitor&& monitor = Monitor{})
{
    LanczosRun run;
    Vector theta, estimates;
    // Pair i of the current Rayleigh-Ritz (theta, estimates) with residual r.
    auto pair_converged = [&](Index i, double r) {
        if (r <= tol * scale) return true;
        if (value_tol <= 0 || theta.size() < 2) return false;
        double gap = std::numeric_limits<double>::infinity();
        for (Index l = 0; l < theta.size(); ++l) {
            if (l == i) continue;
            const double d = std::abs(theta[i] - theta[l]);
            if ((l == i - 1 || l == i + 1) && estimates[l] > detail::kResolved * d) return false;
            gap = std::min(gap, d - estimates[l]);
        }
        const double delta = gap - r;
        return delta > 0 && r * r <= value_tol * scale * delta;
    };
    Matrix S;
    Index failed_checks = 0;
    bool fresh = false;  // theta/S describe the current basis
    auto rayleigh_ritz = [&] {
        basis.ritz(theta, S, estimates);
        if (theta.size() > 0) scale = std::max(scale, theta.cwiseAbs().maxCoeff());
        fresh = true;
    };
    auto finish = [&](bool test) {
        if (!fresh) rayleigh_ritz();
        const auto sel = select_wanted(theta, wanted, which);
        const Index w = static_cast<Index>(sel.size());
        Matrix Ssel(basis.processed(), w);
        run.values.resize(w);
        for (Index j = 0; j < w; ++j) {
            Ssel.col(j) = S.col(sel[static_cast<size_t>(j)]);
            run.values[j] = theta[sel[static_cast<size_t>(j)]];
        }
        run.vectors.resize(basis.dim(), w);
        run.products.resize(basis.dim(), w);
        basis.ritz_vectors(Ssel, run.vectors, run.products);
        run.residuals.resize(w);
        run.converged.assign(static_cast<size_t>(w), 0);
        bool all = w == wanted;
        for (Index j = 0; j < w; ++j) {
            Vector r = run.products.col(j) - run.values[j] * run.vectors.col(j);
            basis.remove_deflated(r);
            run.residuals[j] = norm(r);
            run.converged[static_cast<size_t>(j)] =
                pair_converged(sel[static_cast<size_t>(j)], run.residuals[j]);
            all = all && run.converged[static_cast<size_t>(j)];
        }
        run.all_converged = all;
        return test ? all : true;
    };

    while (true) {
        if (basis.pending() == 0) {  // the whole (deflated) space is spanned: Ritz pairs are exact
            finish(false);
            return run;
        }
        if (!basis.has_room()) {
            if (!fresh) rayleigh_ritz();
            Index converged = 0;
            for (Index i : select_wanted(theta, wanted, which)) converged += pair_converged(i, estimates[i]);
            const Index keep =
                detail::restart_keep(wanted, converged, basis.processed(), basis.capacity(), basis.pending());
            const auto sel = select_wanted(theta, keep, which);
            Matrix Skeep(basis.processed(), static_cast<Index>(sel.size()));
            Vector tkeep(static_cast<Index>(sel.size()));
            for (size_t j = 0; j < sel.size(); ++j) {
                Skeep.col(static_cast<Index>(j)) = S.col(sel[j]);
                tkeep[static_cast<Index>(j)] = theta[sel[j]];
            }
            basis.restart(Skeep, tkeep);
            ++run.restarts;
            fresh = false;
        }
        if (!op.affords(basis.pending())) {
            finish(false);
            return run;
        }
        op.apply(basis.pending_vectors(), basis.product_slot());
        basis.absorb();
        fresh = false;
        check_interrupt();
        if (basis.processed() < wanted && basis.pending() > 0) continue;
        rayleigh_ritz();
        if (monitor(theta, estimates)) {
            finish(false);
            return run;
        }
        const auto sel = select_wanted(theta, wanted, which);
        bool passed = static_cast<Index>(sel.size()) == wanted || basis.pending() == 0;
        for (Index i : sel) passed = passed && pair_converged(i, estimates[i]);
        if (!passed) continue;
        if (finish(true)) return run;
        // The estimate passed but the true residual did not (rounding at a
        // tolerance near machine precision, or a not quite linear operator).
        if (++failed_checks >= 3) return run;
    }
}

}  // namespace eosfast
