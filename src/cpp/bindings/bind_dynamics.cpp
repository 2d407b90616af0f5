// Bindings of the dynamics layer (filled by its feature).
#include "common.hpp"

namespace eosfast::bindings {

void init_dynamics(py::module_& m) {}

}  // namespace eosfast::bindings
