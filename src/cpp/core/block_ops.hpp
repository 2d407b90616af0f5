// Products of a tall block with small matrices, deterministic for any thread
// count and any buffer alignment (the block analogues of vector_ops.hpp), and
// orthogonalisation against an orthonormal basis.
#pragma once

#include "vector_ops.hpp"

namespace eosfast {

// out = V^T W for tall V (n, a) and W (n, b): pairwise fixed-order dots per
// chunk, chunks added in order.
inline void gram(ConstMatRef V, ConstMatRef W, MatRef out)
{
    const Chunking chunks(V.rows(), kVectorChunk);
    const Index a = V.cols(), b = W.cols();
    Matrix parts(a * b, chunks.count());
    parallel_for(chunks.count(), [&](Index c) {
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
    parallel_for(chunks.count(), [&](Index c) {
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
    parallel_for(chunks.count(), [&](Index c) {
        const Index begin = chunks.begin(c), len = chunks.length(c);
        Matrix part = V.block(begin, 0, len, a) * S;
        V.block(begin, 0, len, b) = part;
    });
}

// Removes from x its components along the orthonormal columns of Q by two
// passes of classical Gram-Schmidt ("twice is enough": Giraud, Langou &
// Rozloznik 2005; Parlett 1998, sec. 6.9). Adds the removed coefficients
// Q^T x to `coeffs` (length Q.cols()) when given.
inline void orthogonalize(ConstMatRef Q, VecRef x, Vector* coeffs = nullptr)
{
    if (Q.cols() == 0) return;
    Vector c(Q.cols());
    for (int pass = 0; pass < 2; ++pass) {
        dots(Q, x, c);
        add_combination(Q, -c, x);
        if (coeffs) *coeffs += c;
    }
}

}  // namespace eosfast
