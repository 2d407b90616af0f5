// The sharpness tracker: warm-started top eigenpairs along a trajectory. Its
// options and its state are the C++ structs, bound with read-only attributes;
// both pickle, and a state reads as a mapping of plain values (arrays, ints,
// the options as a dict) for checkpoint files.
#include "../spectrum/tracker.hpp"
#include "common.hpp"

namespace eosfast::bindings {

namespace {

// Version of a saved state (its pickle and its mapping view); a different one is
// refused with a clear error.
const int kTrackerStateFormat = 1;

// The fields of a state, in the order of its mapping view and its pickle.
constexpr const char* kStateFields[] = {"vectors",   "values",       "older",   "k",
                                        "rng_state", "measurements", "options", "format"};

py::dict options_dict(const TrackerOptions& o)
{
    py::dict d;
    d["k"] = o.k;
    d["tol"] = o.tol;
    d["value_tol"] = o.value_tol;
    d["grow_above"] = o.grow_above;
    d["max_k"] = o.max_k;
    d["max_matvecs"] = o.max_matvecs;
    d["seed"] = o.seed;
    return d;
}

TrackerOptions options_from_dict(const py::dict& d)
{
    TrackerOptions o;
    o.k = d["k"].cast<Index>();
    o.tol = d["tol"].cast<double>();
    o.value_tol = d["value_tol"].cast<double>();
    o.grow_above = d["grow_above"].cast<double>();
    o.max_k = d["max_k"].cast<Index>();
    o.max_matvecs = d["max_matvecs"].cast<Index>();
    o.seed = d["seed"].cast<std::uint64_t>();
    return o;
}

py::object state_field(const TrackerState& s, const std::string& key)
{
    if (key == "vectors") return py::cast(s.vectors);
    if (key == "values") return py::cast(s.values);
    if (key == "older") return py::cast(s.older);
    if (key == "k") return py::cast(s.k);
    if (key == "rng_state") return py::cast(s.rng_state);
    if (key == "measurements") return py::cast(s.measurements);
    if (key == "options") return options_dict(s.options);
    if (key == "format") return py::cast(kTrackerStateFormat);
    throw py::key_error(key);
}

py::tuple state_keys()
{
    py::list keys;
    for (const char* key : kStateFields) keys.append(key);
    return py::tuple(keys);
}

}  // namespace

void init_tracker(py::module_& m)
{
    const TrackerOptions defaults;
    py::class_<TrackerOptions>(m, "TrackerOptions", py::module_local())
        .def(py::init([](Index k, double tol, double value_tol, double grow_above, Index max_k,
                         Index max_matvecs, std::uint64_t seed) {
                 return TrackerOptions{k, tol, value_tol, grow_above, max_k, max_matvecs, seed};
             }),
             py::arg("k") = defaults.k, py::arg("tol") = defaults.tol,
             py::arg("value_tol") = defaults.value_tol, py::arg("grow_above") = defaults.grow_above,
             py::arg("max_k") = defaults.max_k, py::arg("max_matvecs") = defaults.max_matvecs,
             py::arg("seed") = defaults.seed)
        .def_readonly("k", &TrackerOptions::k)
        .def_readonly("tol", &TrackerOptions::tol)
        .def_readonly("value_tol", &TrackerOptions::value_tol)
        .def_readonly("grow_above", &TrackerOptions::grow_above)
        .def_readonly("max_k", &TrackerOptions::max_k)
        .def_readonly("max_matvecs", &TrackerOptions::max_matvecs)
        .def_readonly("seed", &TrackerOptions::seed)
        .def("as_dict", &options_dict)
        .def("__reduce__", [](py::object self) {
            const auto& o = self.cast<const TrackerOptions&>();
            return py::make_tuple(self.get_type(), py::make_tuple(o.k, o.tol, o.value_tol, o.grow_above,
                                                                  o.max_k, o.max_matvecs, o.seed));
        });

    py::class_<TrackerState>(m, "TrackerState", py::module_local())
        .def(py::init([](Matrix vectors, Vector values, Matrix older, Index k, std::uint64_t rng_state,
                         Index measurements, const TrackerOptions& options, int format) {
                 if (format != kTrackerStateFormat)
                     throw py::value_error("a tracker state of format " + std::to_string(format) +
                                           ", this eosfast reads format " +
                                           std::to_string(kTrackerStateFormat) +
                                           ": continue it with the eosfast that saved it");
                 return TrackerState{std::move(vectors), std::move(values), std::move(older), k,
                                     rng_state,          measurements,      options};
             }),
             py::arg("vectors"), py::arg("values"), py::arg("older"), py::arg("k"), py::arg("rng_state"),
             py::arg("measurements"), py::arg("options"), py::arg("format") = kTrackerStateFormat)
        .def_readonly("vectors", &TrackerState::vectors)
        .def_readonly("values", &TrackerState::values)
        .def_readonly("older", &TrackerState::older)
        .def_readonly("k", &TrackerState::k)
        .def_readonly("rng_state", &TrackerState::rng_state)
        .def_readonly("measurements", &TrackerState::measurements)
        .def_readonly("options", &TrackerState::options)
        .def_readonly_static("FORMAT", &kTrackerStateFormat)
        // The mapping view: what a checkpoint file stores.
        .def("keys", [](const TrackerState&) { return state_keys(); })
        .def("__getitem__", &state_field, py::arg("key"))
        .def("__iter__", [](const TrackerState&) { return py::iter(state_keys()); })
        .def("__len__", [](const TrackerState&) { return py::len(state_keys()); })
        .def("__contains__",
             [](const TrackerState&, const std::string& key) {
                 for (const char* k : kStateFields)
                     if (key == k) return true;
                 return false;
             })
        // Pickles through the constructor (__reduce__ serves every protocol).
        .def("__reduce__", [](py::object self) {
            const auto& s = self.cast<const TrackerState&>();
            return py::make_tuple(self.get_type(),
                                  py::make_tuple(s.vectors, s.values, s.older, s.k, s.rng_state,
                                                 s.measurements, s.options, kTrackerStateFormat));
        });

    py::class_<SharpnessTracker>(m, "SharpnessTracker", py::module_local())
        .def(py::init<TrackerOptions>(), py::arg("options"))
        .def(
            "measure",
            [](SharpnessTracker& t, const LinearOperator& op) {
                return call_released([&] { return t.measure(op); });
            },
            py::arg("op"))
        .def("last", &SharpnessTracker::last)
        .def("state", &SharpnessTracker::state)
        .def("restore", &SharpnessTracker::restore, py::arg("state"))
        .def_property_readonly("options", &SharpnessTracker::options)
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
