// The library-wide thread count. Every parallel region of the core asks
// num_threads(); results never depend on it (see parallel.hpp).
//
// Two settings: the default (the CPUs this process may use, worked out by the
// Python package at import from the affinity mask, the cgroup CPU quota and
// the environment, and handed over with set_default_threads) and an explicit
// count from set_num_threads (0 = use the default).
#pragma once

#include <algorithm>
#include <atomic>
#include <thread>

namespace eosfast {

namespace detail {
inline std::atomic<int>& thread_setting()
{
    static std::atomic<int> setting{0};  // 0 = the default
    return setting;
}
inline std::atomic<int>& default_setting()
{
    static std::atomic<int> setting{0};  // 0 = not handed over yet: hardware_threads()
    return setting;
}
}  // namespace detail

// Whether this build has the thread pool (EOSFAST_THREADS=ON, the default) or
// runs every region serially on the calling thread.
inline bool threads_enabled()
{
#ifdef EOSFAST_SERIAL
    return false;
#else
    return true;
#endif
}

inline const char* threads_backend() { return threads_enabled() ? "pool" : "serial"; }

// The machine's logical CPUs (for information: the default comes from
// set_default_threads, which knows about affinity masks and CPU quotas).
inline int hardware_threads()
{
    if (!threads_enabled()) return 1;
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

inline int default_threads()
{
    if (!threads_enabled()) return 1;
    const int n = detail::default_setting().load(std::memory_order_relaxed);
    return n > 0 ? n : hardware_threads();
}

// The raw explicit setting: 0 when the default is in use.
inline int thread_setting() { return detail::thread_setting().load(std::memory_order_relaxed); }

inline int num_threads()
{
    const int n = thread_setting();
    return n > 0 ? n : default_threads();
}

// n <= 0 restores the default.
inline void set_num_threads(int n) { detail::thread_setting().store(std::max(0, n)); }

// n <= 0 forgets the handed-over default (back to hardware_threads()).
inline void set_default_threads(int n) { detail::default_setting().store(std::max(0, n)); }

}  // namespace eosfast
