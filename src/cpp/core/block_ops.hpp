// Products of a tall block with small matrices, deterministic for any thread
// count and any buffer alignment (the block analogues of vector_ops.hpp), and
// orthogonalisation against an orthonormal basis.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "vector_ops.hpp"

namespace eosfast {

// out = V^T W for tall V (n, a) and W (n, b): pairwise fixed-order dots per
// chunk, chunks added in order.
inline void gram(ConstMatRef V, ConstMatRef W, MatRef out)
{
    const Chunking chunks(V.rows(), kVectorChunk);
    const Index a = V.cols(), b = W.cols();
    Matrix parts(a * b, chunks.count());
    const double work = static_cast<double>(V.rows()) * static_cast<double>(a * b);
    parallel_for(chunks.count(), work, [&](Index c) {
        const Index begin = chunks.begin(c), len = chunks.length(c);
        for (Index j = 0; j < b; ++j)
            for (Index i = 0; i < a; ++i)
                parts(i + a * j, c) =
                    detail::fixed_dot(V.col(i).data() + begin, W.col(j).data() + begin, len);
    });
    Vector total = Vector::Zero(a * b);
    for (Index c = 0; c < chunks.count(); ++c) total += parts.col(c);
    for (Index j = 0; j < b; ++j) out.col(j) = total.segment(a * j, a);
}

// out = V S for tall V (n, a) and small S (a, b), over fixed row chunks, each
// formed in an aligned temporary. `out` must not alias V.
inline void combine(ConstMatRef V, ConstMatRef S, MatRef out)
{
    const Chunking chunks(V.rows(), kVectorChunk);
    const double work = static_cast<double>(V.rows()) * static_cast<double>(S.rows() * S.cols());
    parallel_for(chunks.count(), work, [&](Index c) {
        const Index begin = chunks.begin(c), len = chunks.length(c);
        Matrix part = V.middleRows(begin, len) * S;
        out.middleRows(begin, len) = part;
    });
}

// V.leftCols(S.cols()) = V.leftCols(S.rows()) S in place: each row chunk is
// read whole into a temporary before it is overwritten.
inline void combine_in_place(MatRef V, ConstMatRef S)
{
    const Chunking chunks(V.rows(), kVectorChunk);
    const Index a = S.rows(), b = S.cols();
    parallel_for(chunks.count(), static_cast<double>(V.rows()) * static_cast<double>(a * b), [&](Index c) {
        const Index begin = chunks.begin(c), len = chunks.length(c);
        Matrix part = V.block(begin, 0, len, a) * S;
        V.block(begin, 0, len, b) = part;
    });
}

namespace detail {
// Rows per cache block inside a chunk: a block of a 64-column basis fits in L2.
inline constexpr Index kSweepBlock = 512;

// One sweep over x in fixed chunks: x -= Q sub (when given), then the partial
// sums of Q^T x (when wanted) and of x^T x, cache-blocked so each block of Q
// is read from memory once. Returns x^T x; adds Q^T x to *project.
inline double sweep(ConstMatRef Q, VecRef x, const Vector* sub, Vector* project)
{
    const Chunking chunks(x.size(), kVectorChunk);
    const Index m = Q.cols();
    Matrix parts(m + 1, chunks.count());
    const double work = static_cast<double>(x.size()) * static_cast<double>((sub ? m : 0) + (project ? m : 0) + 1);
    parallel_for(chunks.count(), work, [&](Index c) {
        const Index begin = chunks.begin(c), len = chunks.length(c);
        Vector acc = Vector::Zero(m + 1);
        for (Index s = 0; s < len; s += kSweepBlock) {
            const Index b = begin + s, l = std::min(kSweepBlock, len - s);
            double* xs = x.data() + b;
            if (sub) {
                for (Index j = 0; j < m; ++j) {
                    const double cj = (*sub)[j];
                    const double* q = Q.col(j).data() + b;
                    for (Index i = 0; i < l; ++i) xs[i] -= cj * q[i];
                }
            }
            if (project)
                for (Index j = 0; j < m; ++j) acc[j] += fixed_dot(Q.col(j).data() + b, xs, l);
            acc[m] += fixed_dot(xs, xs, l);
        }
        parts.col(c) = acc;
    });
    Vector total = Vector::Zero(m + 1);
    for (Index c = 0; c < chunks.count(); ++c) total += parts.col(c);
    if (project) *project = total.head(m);
    return total[m];
}
}  // namespace detail

struct Norms {
    double before = 0.0;  // ||x|| on entry
    double after = 0.0;   // ||x|| on exit
};

// Removes from x its components along the orthonormal columns of Q by
// classical Gram-Schmidt with one reorthogonalisation ("twice is enough":
// Giraud, Langou & Rozloznik 2005; Parlett 1998, sec. 6.9), in at most three
// sweeps over Q: projections; subtract + projections of the remainder;
// subtract again. Each subtraction is skipped when the remainder is already
// orthogonal to working precision (|Q^T x| <= 8 eps sqrt(m) |x|, the level the
// second subtraction itself would leave): a vector whose known components
// were removed beforehand (a Lanczos step after its three-term recurrence)
// often costs one sweep. Each sweep streams Q from memory, which on long
// vectors is most of a solver's overhead. Adds the removed coefficients to
// *coeffs (length Q.cols()) when given.
inline Norms orthogonalize(ConstMatRef Q, VecRef x, Vector* coeffs = nullptr)
{
    const Index m = Q.cols();
    Norms norms;
    Vector c1(m), c2(m);
    norms.before = std::sqrt(detail::sweep(Q, x, nullptr, m > 0 ? &c1 : nullptr));
    const double eps = std::numeric_limits<double>::epsilon();
    const double negligible = 8.0 * eps * std::sqrt(static_cast<double>(m));
    if (m == 0 || c1.norm() <= negligible * norms.before) {
        norms.after = norms.before;
        return norms;
    }
    double squared = detail::sweep(Q, x, &c1, &c2);
    if (coeffs) *coeffs += c1;
    if (c2.norm() > negligible * std::sqrt(squared)) {
        squared = detail::sweep(Q, x, &c2, nullptr);
        if (coeffs) *coeffs += c2;
    }
    norms.after = std::sqrt(squared);
    return norms;
}

}  // namespace eosfast
