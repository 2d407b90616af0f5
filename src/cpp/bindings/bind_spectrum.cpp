// Bindings of the spectrum layer (filled by its feature).
#include "common.hpp"

namespace eosfast::bindings {

void init_spectrum(py::module_& m) {}

}  // namespace eosfast::bindings
