// Bindings of the kernels layer (filled by its feature).
#include "common.hpp"

namespace eosfast::bindings {

void init_kernels(py::module_& m) {}

}  // namespace eosfast::bindings
