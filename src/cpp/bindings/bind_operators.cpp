// Linear operators: the polymorphic base the solvers accept, dense matrices
// and Python callables.
#include "../core/linear_operator.hpp"
#include "callback_problem.hpp"

namespace eosfast::bindings {

void init_operators(py::module_& m)
{
    py::class_<LinearOperator, std::shared_ptr<LinearOperator>>(m, "LinearOperator", py::module_local())
        .def_property_readonly("rows", &LinearOperator::rows)
        .def_property_readonly("thread_safe", &LinearOperator::thread_safe)
        .def("apply", [](const LinearOperator& op, ConstMatRef V) {
            require(V.rows() == op.rows(), "the block has " + std::to_string(V.rows()) + " rows, expected " +
                                               std::to_string(op.rows()));
            Matrix out(V.rows(), V.cols());
            call_released([&] { op.apply(V, out); });
            return out;
        });

    py::class_<HessianOperator, LinearOperator, std::shared_ptr<HessianOperator>>(m, "HessianOperator",
                                                                                  py::module_local())
        .def_property_readonly("point", &HessianOperator::point);

    py::class_<DenseOperator, LinearOperator, std::shared_ptr<DenseOperator>>(m, "DenseOperator",
                                                                              py::module_local())
        .def(py::init<Matrix>(), py::arg("A"))
        .def_property_readonly("matrix", &DenseOperator::matrix);

    py::class_<CallableOperator, LinearOperator, std::shared_ptr<CallableOperator>>(m, "CallableOperator",
                                                                                    py::module_local())
        .def(py::init<py::object, Index, py::object>(), py::arg("matvec"), py::arg("dim"),
             py::arg("matmat") = py::none());
}

}  // namespace eosfast::bindings
