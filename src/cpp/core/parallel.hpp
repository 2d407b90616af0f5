// Deterministic parallelism. Work is split into chunks whose size never
// depends on the thread count; each chunk is computed by one thread with
// single-threaded Eigen, and chunk results are combined in index order. So a
// result is bitwise identical for any number of threads, and whether a region
// runs in parallel or serially.
//
// The threads are eosfast's own small pool (never OpenMP: its spin-waiting
// workers collapse on a busy host, and its wait policy is process-wide, so it
// cannot be tuned for eosfast alone). The calling thread takes part in every
// region; chunks are handed out one at a time by an atomic counter, so a
// worker that the OS deschedules holds up the others by at most the chunk it
// is computing; the caller never waits for a worker that has not started (it
// closes the region once its own chunks are done and waits only for workers
// inside it); waiting threads spin for a few microseconds at most and then
// block on a condition variable, so they leave the cores to the work. A region
// whose estimated work cannot pay for waking threads runs on the calling
// thread alone (docs/threads.md).
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if !defined(EOSFAST_SERIAL) && (defined(__unix__) || defined(__APPLE__))
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#define EOSFAST_POSIX_THREADS 1
#endif

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

// The least work (in multiply-adds, or element operations for memory-bound
// loops) that each thread of a region must get: about 30-100 us of compute,
// well above the few microseconds that waking a blocked worker costs. A region
// with work w uses at most floor(w / kMinThreadWork) threads, so one with less
// than twice this runs serially on the calling thread.
inline constexpr double kMinThreadWork = 1 << 17;

// How many threads a region of n_chunks chunks and `work` multiply-adds uses:
// min(num_threads(), n_chunks, work / kMinThreadWork), at least 1.
inline int region_threads(Index n_chunks, double work)
{
    if (n_chunks <= 1 || work < 2 * kMinThreadWork) return 1;  // no thread-count query
    const double by_work = work / kMinThreadWork;
    Index t = std::min<Index>(num_threads(), n_chunks);
    if (by_work < static_cast<double>(t)) t = static_cast<Index>(by_work);
    return static_cast<int>(std::max<Index>(t, 1));
}

namespace detail {

// Iterations of the bounded spin before a waiting thread blocks (a few
// microseconds: enough to catch the next region of a tight loop, too short to
// take a busy host's core away from the work).
inline constexpr int kSpinIterations = 2000;

inline void cpu_relax()
{
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __builtin_ia32_pause();
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
    asm volatile("yield");
#else
    std::this_thread::yield();
#endif
}

// Set on the pool's workers and on a caller inside a region: a region opened
// from inside another runs serially (as nested OpenMP regions did).
inline bool& in_region()
{
    thread_local bool flag = false;
    return flag;
}

#ifndef EOSFAST_SERIAL
class ThreadPool {
public:
    // The process's pool (a new one after a fork: the child has no workers).
    static ThreadPool& instance()
    {
        static std::mutex guard;
        static ThreadPool* pool = nullptr;
        const long pid = current_pid();
        std::lock_guard<std::mutex> lock(guard);
        // Never destroyed: the workers block on a condition variable until the
        // process exits, and joining them from static destructors could hang.
        if (pool == nullptr || pool->m_pid != pid) pool = new ThreadPool(pid);
        return *pool;
    }

    // Runs body(c) for c in [0, n_chunks) on the caller and up to threads - 1
    // workers; false (nothing run) when another thread holds the pool.
    template <class Body>
    bool run(Index n_chunks, int threads, Body& body)
    {
        std::unique_lock<std::mutex> busy(m_busy, std::try_to_lock);
        if (!busy.owns_lock()) return false;
        grow(threads - 1);
        m_invoke = [](void* ctx, Index c) { (*static_cast<Body*>(ctx))(c); };
        m_ctx = const_cast<void*>(static_cast<const void*>(&body));
        m_chunks = n_chunks;
        m_helpers = threads - 1;
        m_next.store(0, std::memory_order_relaxed);
        m_failed.store(false, std::memory_order_relaxed);
        m_error = nullptr;
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            const std::uint64_t generation = (m_entry.load(std::memory_order_relaxed) >> 32) + 1;
            m_entry.store(generation << 32, std::memory_order_release);
        }
        m_wake.notify_all();
        work();
        // Close the region: a worker that has not entered yet never will.
        std::uint64_t e = m_entry.fetch_or(kClosed, std::memory_order_acq_rel) | kClosed;
        for (int spin = 0; (e & kCount) != 0 && spin < kSpinIterations; ++spin) {
            cpu_relax();
            e = m_entry.load(std::memory_order_acquire);
        }
        if ((e & kCount) != 0) {
            std::unique_lock<std::mutex> lock(m_mutex);
            m_done.wait(lock, [&] { return (m_entry.load(std::memory_order_acquire) & kCount) == 0; });
        }
        if (m_error) {
            std::exception_ptr error = m_error;
            m_error = nullptr;
            std::rethrow_exception(error);
        }
        return true;
    }

    int workers() const { return static_cast<int>(m_workers.size()); }

private:
    // m_entry: bits 0-30 the workers inside the region, bit 31 closed, bits
    // 32-63 the region's generation (a worker enters only the region it saw).
    static constexpr std::uint64_t kCount = (std::uint64_t(1) << 31) - 1;
    static constexpr std::uint64_t kClosed = std::uint64_t(1) << 31;

    explicit ThreadPool(long pid) : m_pid(pid) { m_entry.store(kClosed); }

    static long current_pid()
    {
#ifdef EOSFAST_POSIX_THREADS
        return static_cast<long>(::getpid());
#else
        return 0;
#endif
    }

    void grow(int helpers)
    {
        while (static_cast<int>(m_workers.size()) < helpers) {
            const int index = static_cast<int>(m_workers.size());
            const std::uint32_t seen = static_cast<std::uint32_t>(m_entry.load() >> 32);
            m_workers.emplace_back([this, index, seen] { worker(index, seen); });
            // Never joined (see instance()).
            m_workers.back().detach();
        }
    }

    void work()
    {
        for (;;) {
            if (m_failed.load(std::memory_order_relaxed)) return;
            const Index c = m_next.fetch_add(1, std::memory_order_relaxed);
            if (c >= m_chunks) return;
            try {
                m_invoke(m_ctx, c);
            } catch (...) {
                std::lock_guard<std::mutex> lock(m_mutex);
                if (!m_error) m_error = std::current_exception();
                m_failed.store(true, std::memory_order_relaxed);
            }
        }
    }

    void worker(int index, std::uint32_t seen)
    {
#ifdef EOSFAST_POSIX_THREADS
        // Signals (Ctrl-C) belong to the interpreter's threads, not to the pool.
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, nullptr);
#endif
        in_region() = true;
        for (;;) {
            std::uint64_t e = m_entry.load(std::memory_order_acquire);
            for (int spin = 0; static_cast<std::uint32_t>(e >> 32) == seen && spin < kSpinIterations; ++spin) {
                cpu_relax();
                e = m_entry.load(std::memory_order_acquire);
            }
            if (static_cast<std::uint32_t>(e >> 32) == seen) {
                std::unique_lock<std::mutex> lock(m_mutex);
                m_wake.wait(lock, [&] {
                    e = m_entry.load(std::memory_order_acquire);
                    return static_cast<std::uint32_t>(e >> 32) != seen;
                });
            }
            seen = static_cast<std::uint32_t>(e >> 32);
            bool entered = false;
            while (static_cast<std::uint32_t>(e >> 32) == seen && !(e & kClosed)) {
                if (m_entry.compare_exchange_weak(e, e + 1, std::memory_order_acq_rel,
                                                  std::memory_order_acquire)) {
                    entered = true;
                    break;
                }
            }
            if (!entered) continue;
            if (index < m_helpers) work();
            const std::uint64_t before = m_entry.fetch_sub(1, std::memory_order_acq_rel);
            if ((before & kClosed) && (before & kCount) == 1) {
                std::lock_guard<std::mutex> lock(m_mutex);
                m_done.notify_all();
            }
        }
    }

    const long m_pid;
    std::mutex m_busy;   // one region at a time; another caller runs serially
    std::mutex m_mutex;  // the condition variables and the first exception
    std::condition_variable m_wake, m_done;
    std::vector<std::thread> m_workers;
    std::atomic<std::uint64_t> m_entry{0};
    // The region (written before m_entry opens it, read after entering it).
    void (*m_invoke)(void*, Index) = nullptr;
    void* m_ctx = nullptr;
    Index m_chunks = 0;
    int m_helpers = 0;
    std::atomic<Index> m_next{0};
    std::atomic<bool> m_failed{false};
    std::exception_ptr m_error;
};
#endif

}  // namespace detail

// The pool's workers started so far in this process (0 in a serial build).
inline int pool_workers()
{
#ifdef EOSFAST_SERIAL
    return 0;
#else
    return detail::ThreadPool::instance().workers();
#endif
}

// Runs body(c) for c in [0, n_chunks) on region_threads(n_chunks, work)
// threads, the calling thread among them. `work` estimates the region's total
// multiply-adds; it decides only how many threads run, never what they
// compute. Exceptions thrown by body stop the handing out of chunks; the first
// one is rethrown on the calling thread once every started chunk has ended.
// A serial build (EOSFAST_THREADS=OFF), a region opened inside another, and a
// region opened while another thread's holds the pool run serially, in order.
template <class Body>
void parallel_for(Index n_chunks, double work, Body&& body)
{
    if (n_chunks <= 0) return;
#ifndef EOSFAST_SERIAL
    const int threads = region_threads(n_chunks, work);
    if (threads > 1 && !detail::in_region()) {
        detail::in_region() = true;
        struct Reset {
            ~Reset() { detail::in_region() = false; }
        } reset;
        if (detail::ThreadPool::instance().run(n_chunks, threads, body)) return;
    }
#endif
    for (Index c = 0; c < n_chunks; ++c) body(c);
}

// Sum over chunks of a scalar partial(c), added in chunk order.
template <class Partial>
double ordered_sum(Index n_chunks, double work, Partial&& partial)
{
    if (n_chunks == 1) return 0.0 + partial(Index(0));  // the loop below, without its allocation
    std::vector<double> parts(static_cast<size_t>(std::max<Index>(n_chunks, 0)));
    parallel_for(n_chunks, work, [&](Index c) { parts[static_cast<size_t>(c)] = partial(c); });
    double total = 0.0;
    for (double p : parts) total += p;
    return total;
}

}  // namespace eosfast
