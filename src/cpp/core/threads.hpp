// The library-wide thread count. Every parallel region of the core asks
// num_threads(); results never depend on it (see parallel.hpp).
#pragma once

#include <algorithm>
#include <atomic>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace eosfast {

namespace detail {
inline std::atomic<int>& thread_setting()
{
    static std::atomic<int> setting{0};  // 0 = all cores
    return setting;
}
}  // namespace detail

inline bool openmp_enabled()
{
#ifdef _OPENMP
    return true;
#else
    return false;
#endif
}

inline int hardware_threads()
{
#ifdef _OPENMP
    return std::max(1, omp_get_num_procs());
#else
    return 1;
#endif
}

inline int num_threads()
{
    const int n = detail::thread_setting().load(std::memory_order_relaxed);
    return n > 0 ? n : hardware_threads();
}

// n <= 0 restores the default (all cores).
inline void set_num_threads(int n) { detail::thread_setting().store(std::max(0, n)); }

}  // namespace eosfast
