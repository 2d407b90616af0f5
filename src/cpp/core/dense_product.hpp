// out = A V for a dense A, split over fixed row chunks. Each chunk is formed
// in an aligned temporary first, so the rounding never depends on the
// address of the caller's output buffer.
#pragma once

#include "parallel.hpp"

namespace eosfast {

inline constexpr Index kDenseRowChunk = 256;

inline void dense_product(const Matrix& A, ConstMatRef V, MatRef out)
{
    const Chunking chunks(A.rows(), kDenseRowChunk);
    const double work =
        static_cast<double>(A.rows()) * static_cast<double>(A.cols()) * static_cast<double>(V.cols());
    parallel_for(chunks.count(), work, [&](Index c) {
        const Index b = chunks.begin(c), len = chunks.length(c);
        Matrix part = A.middleRows(b, len) * V;
        out.middleRows(b, len) = part;
    });
}

}  // namespace eosfast
