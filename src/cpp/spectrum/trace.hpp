// Stochastic trace estimators. The probe vectors come from the caller (the
// Python layer draws Rademacher probes from numpy's PCG64).
//
// Hutchinson (1990): tr(H) = E[z^T H z] for E[z z^T] = I; the samples z_i^T H z_i
// give the estimate and its standard error.
// Hutch++ (Meyer, Musco, Musco & Woodruff 2021, Alg. 1): with S, G random
// (n, s) blocks, Q = orth(H S); tr(H) = tr(Q^T H Q) + tr((I-QQ^T) H (I-QQ^T)),
// the first part exact, the second by Hutchinson on (I-QQ^T) G. The residual
// samples have variance O(||H - H_s||_F^2), far below Hutchinson's when the
// spectrum decays.
#pragma once

#include <limits>

#include "../core/block_ops.hpp"
#include "../core/interrupt.hpp"
#include "operator_adapter.hpp"

namespace eosfast {

namespace detail {
// samples_j = z_j^T H z_j for the columns of Z, in blocks of `batch` products.
template <class Op>
Vector quadratic_forms(CountingOperator<Op>& H, ConstMatRef Z, Index batch = 32)
{
    const Index n = Z.rows(), m = Z.cols();
    Vector samples(m);
    Matrix HZ(n, std::min(batch, m));
    for (Index b = 0; b < m; b += batch) {
        const Index len = std::min(batch, m - b);
        H.apply(Z.middleCols(b, len), HZ.leftCols(len));
        for (Index j = 0; j < len; ++j) samples[b + j] = dot(Z.col(b + j), HZ.col(j));
        check_interrupt();
    }
    return samples;
}
}  // namespace detail

struct HutchppParts {
    double low_rank = 0.0;  // tr(Q^T H Q), exact
    Vector samples;         // g_j^T (I-QQ^T) H (I-QQ^T) g_j
    Index rank = 0;         // columns of Q
    Index matvecs = 0;
};

template <class Op>
Vector hutchinson_samples(const Op& op, ConstMatRef Z)
{
    require(Z.rows() == op.rows(), "probes must have dim rows");
    CountingOperator<Op> H(op, std::numeric_limits<Index>::max());
    return detail::quadratic_forms(H, Z);
}

template <class Op>
HutchppParts hutchpp_parts(const Op& op, ConstMatRef S, ConstMatRef G)
{
    const Index n = op.rows();
    require(S.rows() == n && G.rows() == n, "probes must have dim rows");
    CountingOperator<Op> H(op, std::numeric_limits<Index>::max());
    Matrix HS(n, S.cols());
    H.apply(S, HS);
    // Q = orth(H S) by Gram-Schmidt twice, dropping dependent columns.
    Matrix Q(n, S.cols());
    Index r = 0;
    for (Index j = 0; j < S.cols(); ++j) {
        Q.col(r) = HS.col(j);
        const Norms norms = orthogonalize(Q.leftCols(r), Q.col(r));
        if (norms.before > 0 && norms.after > 1e-12 * norms.before) Q.col(r++) /= norms.after;
    }
    HutchppParts parts;
    parts.rank = r;
    if (r > 0) {
        Matrix HQ(n, r);
        H.apply(Q.leftCols(r), HQ);
        for (Index j = 0; j < r; ++j) parts.low_rank += dot(Q.col(j), HQ.col(j));
    }
    Matrix Gp = G;
    for (Index j = 0; j < G.cols(); ++j) orthogonalize(Q.leftCols(r), Gp.col(j));
    parts.samples = detail::quadratic_forms(H, Gp);
    parts.matvecs = H.matvecs();
    return parts;
}

}  // namespace eosfast
