// Deterministic parallelism. Work is split into chunks whose size never
// depends on the thread count; each chunk is computed by one thread with
// single-threaded Eigen, and chunk results are combined in index order. So a
// result is bitwise identical for any number of threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <vector>

#include "threads.hpp"
#include "types.hpp"

namespace eosfast {

// A fixed split of [0, n) into chunks of `size` (the last may be shorter).
struct Chunking {
    Index n = 0;
    Index size = 1;

    Chunking(Index n_, Index size_) : n(n_), size(std::max<Index>(1, size_)) {}
    Index count() const { return n == 0 ? 0 : (n + size - 1) / size; }
    Index begin(Index c) const { return c * size; }
    Index length(Index c) const { return std::min(size, n - c * size); }
};

// Runs body(c) for c in [0, n_chunks) on up to num_threads() threads.
// Exceptions thrown by body never escape the OpenMP region: the first one is
// captured and rethrown on the calling thread after the region ends.
// Without OpenMP (a build with EOSFAST_OPENMP=OFF, or a compiler without it)
// the chunks run serially, in order, on the calling thread.
template <class Body>
void parallel_for(Index n_chunks, Body&& body)
{
    if (n_chunks <= 0) return;
#ifdef _OPENMP
    // No thread-count query (a system call) for one chunk.
    const int threads = n_chunks == 1 ? 1 : static_cast<int>(std::min<Index>(num_threads(), n_chunks));
    if (threads > 1) {
        std::exception_ptr error;
        std::atomic<bool> failed{false};
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
        for (Index c = 0; c < n_chunks; ++c) {
            if (failed.load(std::memory_order_relaxed)) continue;
            try {
                body(c);
            } catch (...) {
#pragma omp critical(eosfast_parallel_error)
                {
                    if (!error) error = std::current_exception();
                }
                failed.store(true, std::memory_order_relaxed);
            }
        }
        if (error) std::rethrow_exception(error);
        return;
    }
#endif
    for (Index c = 0; c < n_chunks; ++c) body(c);
}

// Sum over chunks of a scalar partial(c), added in chunk order.
template <class Partial>
double ordered_sum(Index n_chunks, Partial&& partial)
{
    if (n_chunks == 1) return 0.0 + partial(Index(0));  // the loop below, without its allocation
    std::vector<double> parts(static_cast<size_t>(std::max<Index>(n_chunks, 0)));
    parallel_for(n_chunks, [&](Index c) { parts[static_cast<size_t>(c)] = partial(c); });
    double total = 0.0;
    for (double p : parts) total += p;
    return total;
}

}  // namespace eosfast
