// Reductions over long vectors whose result depends neither on the thread
// count nor on the memory alignment of the data (Eigen's own reductions peel
// unaligned heads, so their rounding can change with the buffer's address).
#pragma once

#include <cmath>

#include "parallel.hpp"

namespace eosfast {

// Elements per chunk of a vector reduction (fixed: part of the numerical result).
inline constexpr Index kVectorChunk = 8192;

namespace detail {
// Eight independent accumulators (vectorisable without reassociation), then a
// fixed pairwise tree.
inline double fixed_dot(const double* a, const double* b, Index n)
{
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    Index i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
    for (int j = 0; i < n; ++i, ++j) acc[j] += a[i] * b[i];
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}
}  // namespace detail

inline double dot(ConstVecRef a, ConstVecRef b)
{
    const Chunking chunks(a.size(), kVectorChunk);
    return ordered_sum(chunks.count(), static_cast<double>(a.size()), [&](Index c) {
        return detail::fixed_dot(a.data() + chunks.begin(c), b.data() + chunks.begin(c), chunks.length(c));
    });
}

inline double squared_norm(ConstVecRef a) { return dot(a, a); }
inline double norm(ConstVecRef a) { return std::sqrt(dot(a, a)); }

// out = V^T w for a (n, m) block V: m dot products sharing one pass over w.
inline void dots(ConstMatRef V, ConstVecRef w, VecRef out)
{
    const Chunking chunks(V.rows(), kVectorChunk);
    const Index m = V.cols();
    Matrix parts(m, chunks.count());
    parallel_for(chunks.count(), static_cast<double>(V.rows()) * static_cast<double>(m), [&](Index c) {
        for (Index j = 0; j < m; ++j)
            parts(j, c) = detail::fixed_dot(V.col(j).data() + chunks.begin(c), w.data() + chunks.begin(c),
                                            chunks.length(c));
    });
    out.setZero();
    for (Index c = 0; c < chunks.count(); ++c) out += parts.col(c);
}

// y += V c, split over fixed row chunks (each element summed over j in order).
inline void add_combination(ConstMatRef V, ConstVecRef coeffs, VecRef y)
{
    const Chunking chunks(V.rows(), kVectorChunk);
    const double work = static_cast<double>(V.rows()) * static_cast<double>(V.cols());
    parallel_for(chunks.count(), work, [&](Index c) {
        const Index b = chunks.begin(c), len = chunks.length(c);
        for (Index j = 0; j < V.cols(); ++j) y.segment(b, len) += coeffs[j] * V.col(j).segment(b, len);
    });
}

}  // namespace eosfast
