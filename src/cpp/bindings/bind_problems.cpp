// Problems: the Problem base with the concept's methods, Quadratic, and
// Python-callback problems.
#include "../problems/quadratic.hpp"
#include "callback_problem.hpp"

namespace eosfast::bindings {

void init_problems(py::module_& m)
{
    py::class_<Problem, std::shared_ptr<Problem>>(m, "Problem", py::module_local())
        .def_property_readonly("dim", &Problem::dim)
        .def_property_readonly("name", &Problem::name)
        .def_property_readonly("exact_hvp", &Problem::exact_hvp)
        .def_property_readonly("exact_third", &Problem::exact_third)
        .def_property_readonly("thread_safe", &Problem::thread_safe)
        .def("loss", [](const Problem& p, ConstVecRef x) { return call_released([&] { return p.loss(x); }); })
        .def("loss_and_grad",
             [](const Problem& p, ConstVecRef x) {
                 Vector g(p.dim());
                 const double value = call_released([&] { return p.loss_and_grad(x, g); });
                 return py::make_tuple(value, std::move(g));
             })
        .def("grad",
             [](const Problem& p, ConstVecRef x) {
                 Vector g(p.dim());
                 call_released([&] { p.grad(x, g); });
                 return g;
             })
        .def("hvp",
             [](const Problem& p, ConstVecRef x, ConstMatRef V) {
                 Matrix HV(V.rows(), V.cols());
                 call_released([&] { p.hvp(x, V, HV); });
                 return HV;
             })
        .def("third",
             [](const Problem& p, ConstVecRef x, ConstVecRef u) {
                 Vector out(p.dim());
                 call_released([&] { p.third(x, u, out); });
                 return out;
             })
        .def("hessian",
             [](const Problem& p, ConstVecRef x) { return call_released([&] { return p.hessian(x); }); });

    py::class_<Quadratic, Problem, std::shared_ptr<Quadratic>>(m, "Quadratic", py::module_local())
        .def(py::init<Matrix, Vector, bool>(), py::arg("A"), py::arg("b"), py::arg("diagonal"))
        .def_property_readonly("diagonal", &Quadratic::diagonal)
        .def_property_readonly("A", &Quadratic::A)
        .def_property_readonly("b", &Quadratic::b);

    py::class_<CallbackProblem, Problem, std::shared_ptr<CallbackProblem>>(m, "CallbackProblem",
                                                                           py::module_local())
        .def(py::init<py::object, Index, py::object, py::object, bool>(), py::arg("loss_and_grad"),
             py::arg("dim"), py::arg("hvp"), py::arg("third"), py::arg("block_hvp") = false)
        .def_property_readonly("block_hvp", &CallbackProblem::block_hvp);
}

}  // namespace eosfast::bindings
