// Build and run-time facts: variant, CPU features, threads.
#include <Eigen/Core>
#include <algorithm>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../core/parallel.hpp"
#include "common.hpp"

#if defined(_MSC_VER) && !defined(__clang__) && (defined(_M_X64) || defined(_M_IX86))
#include <immintrin.h>
#include <intrin.h>
#endif

#ifndef EOSFAST_VARIANT
#define EOSFAST_VARIANT "unknown"
#endif

namespace eosfast::bindings {

namespace {
bool cpu_has_avx2_fma()
{
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
    // CPUID leaf 1: FMA (ecx bit 12), OSXSAVE (27), AVX (28); XCR0 bits 1-2: the
    // OS saves the XMM and YMM registers; leaf 7: AVX2 (ebx bit 5).
    int regs[4];
    __cpuid(regs, 0);
    if (regs[0] < 7) return false;
    __cpuid(regs, 1);
    const int ecx = regs[2];
    if (!(ecx & (1 << 12)) || !(ecx & (1 << 27)) || !(ecx & (1 << 28))) return false;
    if ((_xgetbv(0) & 0x6) != 0x6) return false;
    __cpuidex(regs, 7, 0);
    return (regs[1] & (1 << 5)) != 0;
#else
    return false;
#endif
}

std::string compiler()
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#elif defined(_MSC_VER)
    return "msvc " + std::to_string(_MSC_VER);
#else
    return "unknown";
#endif
}
}  // namespace

void init_info(py::module_& m)
{
    m.attr("variant") = EOSFAST_VARIANT;
    m.def("cpu_has_avx2_fma", &cpu_has_avx2_fma);
    m.def("threads_enabled", &threads_enabled);
    m.def("hardware_threads", &hardware_threads);
    m.def("get_num_threads", &num_threads);
    m.def("set_num_threads", &set_num_threads, py::arg("n"));
    m.def("thread_setting", &thread_setting);
    m.def("default_threads", &default_threads);
    m.def("set_default_threads", &set_default_threads, py::arg("n"));
    m.def("pool_workers", &pool_workers);
    m.attr("min_thread_work") = kMinThreadWork;
    // For the tests: a region of n_chunks chunks and `work` multiply-adds whose chunk
    // `throw_at` (if in range) throws std::invalid_argument; returns how many distinct
    // threads ran chunks and how many chunks ran.
    m.def(
        "_parallel_probe",
        [](Index n_chunks, double work, Index throw_at) {
            std::vector<std::thread::id> who(static_cast<size_t>(std::max<Index>(n_chunks, 0)));
            std::atomic<Index> ran{0};
            {
                py::gil_scoped_release release;
                parallel_for(n_chunks, work, [&](Index c) {
                    if (c == throw_at) throw std::invalid_argument("chunk " + std::to_string(c) + " failed");
                    // a little work, so that the other thread gets a chance at a chunk
                    volatile double x = 0;
                    for (int k = 0; k < 20000; ++k) x = x + 1e-9 * k;
                    who[static_cast<size_t>(c)] = std::this_thread::get_id();
                    ran.fetch_add(1);
                });
            }
            std::vector<std::thread::id> ids;
            for (const auto& id : who)
                if (id != std::thread::id() && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
            return py::make_tuple(static_cast<int>(ids.size()), ran.load());
        },
        py::arg("n_chunks"), py::arg("work"), py::arg("throw_at") = -1);
    m.def("build_info", [] {
        py::dict d;
        d["variant"] = EOSFAST_VARIANT;
        d["simd"] = std::string(Eigen::SimdInstructionSetsInUse());
        d["eigen"] = std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
                     std::to_string(EIGEN_MINOR_VERSION);
        d["compiler"] = compiler();
        d["threads_backend"] = std::string(threads_backend());
        return d;
    });
}

}  // namespace eosfast::bindings
