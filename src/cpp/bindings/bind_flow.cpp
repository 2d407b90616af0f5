// Bindings of the flow layer (filled by its feature).
#include "common.hpp"

namespace eosfast::bindings {

void init_flow(py::module_& m) {}

}  // namespace eosfast::bindings
