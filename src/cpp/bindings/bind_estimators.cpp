// Stochastic estimators: Hutchinson and Hutch++ traces, stochastic Lanczos
// quadrature nodes and weights. Probes come from the Python layer.
#include "../core/linear_operator.hpp"
#include "../spectrum/slq.hpp"
#include "../spectrum/trace.hpp"
#include "common.hpp"

namespace eosfast::bindings {

void init_estimators(py::module_& m)
{
    m.def(
        "hutchinson_samples",
        [](const LinearOperator& op, ConstMatRef Z) {
            return call_released([&] { return hutchinson_samples(op, Z); });
        },
        py::arg("op"), py::arg("Z"));

    m.def(
        "hutchpp_parts",
        [](const LinearOperator& op, ConstMatRef S, ConstMatRef G) {
            HutchppParts p = call_released([&] { return hutchpp_parts(op, S, G); });
            return py::make_tuple(p.low_rank, std::move(p.samples), p.rank, p.matvecs);
        },
        py::arg("op"), py::arg("S"), py::arg("G"));

    m.def(
        "slq_nodes",
        [](const LinearOperator& op, ConstMatRef Z, Index steps) {
            QuadratureNodes q = call_released([&] { return slq_nodes(op, Z, steps); });
            return py::make_tuple(std::move(q.nodes), std::move(q.weights), std::move(q.counts), q.matvecs);
        },
        py::arg("op"), py::arg("Z"), py::arg("steps"));
}

}  // namespace eosfast::bindings
