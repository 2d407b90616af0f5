// The extension module. It is built once per kernel variant (generic, avx2)
// under the name EOSFAST_MODULE_NAME; eosfast/_core.py picks one at import.
#include "../core/errors.hpp"
#include "common.hpp"

#ifndef EOSFAST_MODULE_NAME
#error "EOSFAST_MODULE_NAME must be defined by the build"
#endif

namespace eosfast::bindings {
void init_info(py::module_& m);
void init_operators(py::module_& m);
void init_problems(py::module_& m);
void init_kernels(py::module_& m);
void init_spectrum(py::module_& m);
void init_dynamics(py::module_& m);
}  // namespace eosfast::bindings

PYBIND11_MODULE(EOSFAST_MODULE_NAME, m)
{
    namespace py = pybind11;
    using namespace eosfast::bindings;
    m.doc() = "eosfast compiled core (private; use the eosfast package)";
    // Module-local: both kernel variants may be loaded in one process.
    py::register_local_exception<eosfast::NumericalError>(m, "NumericalError", PyExc_RuntimeError);
    py::register_local_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const eosfast::Interrupted&) {
            PyErr_SetNone(PyExc_KeyboardInterrupt);
        }
    });
    init_info(m);
    init_operators(m);
    init_problems(m);
    init_kernels(m);
    init_spectrum(m);
    init_dynamics(m);
}
