// Spectra: eigsh, power iteration, the sharpness tracker, trace estimators
// and stochastic Lanczos quadrature, over any LinearOperator.
#include "../spectrum/eigsh.hpp"
#include "../spectrum/power.hpp"
#include "../spectrum/slq.hpp"
#include "../spectrum/trace.hpp"
#include "../spectrum/tracker.hpp"
#include "common.hpp"

namespace eosfast::bindings {

namespace {
py::array_t<bool> flags(const std::vector<char>& converged)
{
    py::array_t<bool> out(static_cast<py::ssize_t>(converged.size()));
    for (size_t i = 0; i < converged.size(); ++i) out.mutable_at(static_cast<py::ssize_t>(i)) = converged[i] != 0;
    return out;
}

py::dict state_to_dict(const TrackerState& s)
{
    py::dict d;
    d["vectors"] = s.vectors;
    d["values"] = s.values;
    d["k"] = s.k;
    d["rng_state"] = s.rng_state;
    d["measurements"] = s.measurements;
    return d;
}

TrackerState state_from_dict(const py::dict& d)
{
    for (const char* key : {"vectors", "values", "k", "rng_state", "measurements"})
        if (!d.contains(key)) throw py::value_error(std::string("tracker state lacks '") + key + "'");
    TrackerState s;
    s.vectors = d["vectors"].cast<Matrix>();
    s.values = d["values"].cast<Vector>();
    s.k = d["k"].cast<Index>();
    s.rng_state = d["rng_state"].cast<std::uint64_t>();
    s.measurements = d["measurements"].cast<Index>();
    return s;
}
}  // namespace

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
           Index block, Index max_matvecs, std::uint64_t seed) {
            EigshOptions opt;
            opt.k = k;
            opt.which = parse_which(which);
            opt.tol = tol;
            opt.ncv = ncv;
            opt.block = block;
            opt.max_matvecs = max_matvecs;
            opt.seed = seed;
            return call_released([&] { return eigsh(op, opt, v0); });
        },
        py::arg("op"), py::arg("k"), py::arg("which"), py::arg("tol"), py::arg("v0"), py::arg("ncv"),
        py::arg("block"), py::arg("max_matvecs"), py::arg("seed"));

    m.def(
        "power_iteration",
        [](const LinearOperator& op, Index k, const std::string& which, double tol, Index max_iter, double shift,
           std::uint64_t seed) {
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

    py::class_<SharpnessTracker>(m, "SharpnessTracker", py::module_local())
        .def(py::init([](Index k, double tol, double grow_above, Index max_k, Index max_matvecs, std::uint64_t seed) {
                 TrackerOptions o;
                 o.k = k;
                 o.tol = tol;
                 o.grow_above = grow_above;
                 o.max_k = max_k;
                 o.max_matvecs = max_matvecs;
                 o.seed = seed;
                 return SharpnessTracker(o);
             }),
             py::arg("k"), py::arg("tol"), py::arg("grow_above"), py::arg("max_k"), py::arg("max_matvecs"),
             py::arg("seed"))
        .def(
            "measure",
            [](SharpnessTracker& t, const LinearOperator& op) {
                return call_released([&] { return t.measure(op); });
            },
            py::arg("op"))
        .def("last", &SharpnessTracker::last)
        .def("state", [](const SharpnessTracker& t) { return state_to_dict(t.state()); })
        .def(
            "restore", [](SharpnessTracker& t, const py::dict& d) { t.restore(state_from_dict(d)); },
            py::arg("state"))
        .def_property_readonly("k", [](const SharpnessTracker& t) { return t.options().k; })
        .def_property_readonly("tol", [](const SharpnessTracker& t) { return t.options().tol; })
        .def_property_readonly("grow_above", [](const SharpnessTracker& t) { return t.options().grow_above; })
        .def_property_readonly("max_k", [](const SharpnessTracker& t) { return t.options().max_k; })
        .def_property_readonly("max_matvecs", [](const SharpnessTracker& t) { return t.options().max_matvecs; })
        .def_property_readonly("seed", [](const SharpnessTracker& t) { return t.options().seed; });
}

}  // namespace eosfast::bindings
