// The sharpness tracker: warm-started top eigenpairs along a trajectory, with
// state save/restore as a dict of arrays and ints.
#include "../spectrum/tracker.hpp"
#include "common.hpp"

namespace eosfast::bindings {

namespace {
py::dict state_to_dict(const TrackerState& s)
{
    py::dict d;
    d["vectors"] = s.vectors;
    d["values"] = s.values;
    d["older"] = s.older;
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
    if (d.contains("older")) s.older = d["older"].cast<Matrix>();  // absent in states saved before it
    s.k = d["k"].cast<Index>();
    s.rng_state = d["rng_state"].cast<std::uint64_t>();
    s.measurements = d["measurements"].cast<Index>();
    return s;
}
}  // namespace

void init_tracker(py::module_& m)
{
    py::class_<SharpnessTracker>(m, "SharpnessTracker", py::module_local())
        .def(py::init([](Index k, double tol, double value_tol, double grow_above, Index max_k,
                         Index max_matvecs, std::uint64_t seed) {
                 TrackerOptions o;
                 o.k = k;
                 o.tol = tol;
                 o.value_tol = value_tol;
                 o.grow_above = grow_above;
                 o.max_k = max_k;
                 o.max_matvecs = max_matvecs;
                 o.seed = seed;
                 return SharpnessTracker(o);
             }),
             py::arg("k"), py::arg("tol"), py::arg("value_tol"), py::arg("grow_above"), py::arg("max_k"),
             py::arg("max_matvecs"), py::arg("seed"))
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
        .def_property_readonly("value_tol", [](const SharpnessTracker& t) { return t.options().value_tol; })
        .def_property_readonly("grow_above", [](const SharpnessTracker& t) { return t.options().grow_above; })
        .def_property_readonly("max_k", [](const SharpnessTracker& t) { return t.options().max_k; })
        .def_property_readonly("max_matvecs",
                               [](const SharpnessTracker& t) { return t.options().max_matvecs; })
        .def_property_readonly("seed", [](const SharpnessTracker& t) { return t.options().seed; });
}

}  // namespace eosfast::bindings
