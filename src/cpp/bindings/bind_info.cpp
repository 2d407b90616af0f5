// Build and run-time facts: variant, CPU features, OpenMP, threads.
#include <Eigen/Core>

#include "../core/threads.hpp"
#include "common.hpp"

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
    m.def("openmp_enabled", &openmp_enabled);
    m.def("hardware_threads", &hardware_threads);
    m.def("get_num_threads", &num_threads);
    m.def("set_num_threads", &set_num_threads, py::arg("n"));
    m.def("build_info", [] {
        py::dict d;
        d["variant"] = EOSFAST_VARIANT;
        d["simd"] = std::string(Eigen::SimdInstructionSetsInUse());
        d["eigen"] = std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
                     std::to_string(EIGEN_MINOR_VERSION);
        d["compiler"] = compiler();
        d["openmp"] = openmp_enabled();
        return d;
    });
}

}  // namespace eosfast::bindings
