// Spectra over any LinearOperator: the result type, eigsh and power iteration
// here; the tracker and the stochastic estimators in their own files.
#include "../spectrum/eigsh.hpp"
#include "../core/linear_operator.hpp"
#include "../spectrum/power.hpp"
#include "common.hpp"

namespace eosfast::bindings {

namespace {
py::array_t<bool> flags(const std::vector<char>& converged)
{
    py::array_t<bool> out(static_cast<py::ssize_t>(converged.size()));
    for (size_t i = 0; i < converged.size(); ++i)
        out.mutable_at(static_cast<py::ssize_t>(i)) = converged[i] != 0;
    return out;
}

}  // namespace

void init_tracker(py::module_& m);
void init_estimators(py::module_& m);

void init_spectrum(py::module_& m)
{
    py::class_<EigenResult>(m, "EigenResult", py::module_local())
        .def_readonly("eigenvalues", &EigenResult::eigenvalues)
        .def_readonly("eigenvectors", &EigenResult::eigenvectors)
        .def_readonly("residuals", &EigenResult::residuals)
        .def_property_readonly("converged", [](const EigenResult& r) { return flags(r.converged); })
        .def_readonly("matvecs", &EigenResult::matvecs)
        .def_readonly("restarts", &EigenResult::restarts);

    m.def(
        "eigsh",
        [](const LinearOperator& op, Index k, const std::string& which, double tol, ConstMatRef v0, Index ncv,
           Index block, Index max_matvecs, std::uint64_t seed, bool check_copies) {
            EigshOptions opt;
            opt.k = k;
            opt.which = parse_which(which);
            opt.tol = tol;
            opt.ncv = ncv;
            opt.block = block;
            opt.max_matvecs = max_matvecs;
            opt.seed = seed;
            opt.check_copies = check_copies;
            return call_released([&] { return eigsh(op, opt, v0); });
        },
        py::arg("op"), py::arg("k"), py::arg("which"), py::arg("tol"), py::arg("v0"), py::arg("ncv"),
        py::arg("block"), py::arg("max_matvecs"), py::arg("seed"), py::arg("check_copies") = true);

    // The basis size eigsh uses (the unit of SciPy's maxiter), declared once in C++.
    m.def("eigsh_default_ncv", &detail::default_ncv, py::arg("n"), py::arg("k"), py::arg("block"),
          py::arg("ncv"));

    m.def(
        "power_iteration",
        [](const LinearOperator& op, Index k, const std::string& which, double tol, Index max_iter,
           double shift, std::uint64_t seed) {
            PowerOptions opt;
            opt.k = k;
            opt.which = parse_which(which);
            opt.tol = tol;
            opt.max_iter = max_iter;
            opt.shift = shift;
            opt.seed = seed;
            PowerResult r = call_released([&] { return power_iteration(op, opt); });
            return py::make_tuple(std::move(r.eigen), r.shift);
        },
        py::arg("op"), py::arg("k"), py::arg("which"), py::arg("tol"), py::arg("max_iter"), py::arg("shift"),
        py::arg("seed"));
    init_tracker(m);
    init_estimators(m);
}

}  // namespace eosfast::bindings
