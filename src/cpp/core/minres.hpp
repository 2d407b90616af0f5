// MINRES (Paige & Saunders 1975) for A d = b with A symmetric, possibly
// indefinite or singular, starting from d = 0. The residual |b - A d| falls
// monotonically, so a partial solve is always a usable step (unlike CG, whose
// residual may grow and which breaks down at negative curvature). Recurrences
// as in Choi, Paige & Saunders (2011), Table 2.1, without preconditioning.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "vector_ops.hpp"

namespace eosfast {

struct MinresResult {
    Index iterations = 0;
    double residual = 0.0;  // |b - A d|, from the recurrence
};

// apply(v, out): out = A v. Stops when |b - A d| <= tol or after max_iter products.
template <class Apply>
MinresResult minres(Apply&& apply, ConstVecRef b, double tol, Index max_iter, VecRef d)
{
    const Index n = b.size();
    d.setZero();
    MinresResult res;
    double beta = norm(b);
    res.residual = beta;
    if (beta == 0.0 || beta <= tol) return res;

    Vector r1 = b, r2 = b, y = b, v(n), w = Vector::Zero(n), w1(n), w2 = Vector::Zero(n);
    double old_beta = 0.0, dbar = 0.0, epsilon = 0.0, phibar = beta, cs = -1.0, sn = 0.0;
    for (Index it = 1; it <= max_iter; ++it) {
        v = y / beta;
        apply(v, y);
        if (it >= 2) y -= (beta / old_beta) * r1;
        const double alpha = dot(v, y);
        y -= (alpha / beta) * r2;
        r1 = r2;
        r2 = y;
        old_beta = beta;
        beta = norm(y);
        const double old_epsilon = epsilon;
        const double delta = cs * dbar + sn * alpha;
        const double gbar = sn * dbar - cs * alpha;
        epsilon = sn * beta;
        dbar = -cs * beta;
        const double gamma = std::max(std::hypot(gbar, beta), std::numeric_limits<double>::min());
        cs = gbar / gamma;
        sn = beta / gamma;
        const double phi = cs * phibar;
        phibar *= sn;
        w1 = w2;
        w2 = w;
        w = (v - old_epsilon * w1 - delta * w2) / gamma;
        d += phi * w;
        res.iterations = it;
        res.residual = phibar;
        if (phibar <= tol || beta == 0.0) break;
    }
    return res;
}

}  // namespace eosfast
