// Bindings of the dynamics layer: schedules, optimizers, the trajectory
// runner and the gradient-flow integrator.
#include <limits>

#include "../dynamics/gradient_flow.hpp"
#include "../dynamics/runner.hpp"
#include "../dynamics/schedule.hpp"
#include "common.hpp"

namespace eosfast::bindings {

namespace {

py::array_t<double> drain(RecordBuffer& buffer)
{
    py::array_t<double> out({buffer.rows(), buffer.cols()});
    std::copy(buffer.data(), buffer.data() + buffer.rows() * buffer.cols(), out.mutable_data());
    buffer.clear();
    return out;
}

// Runs a slice of the loop without the GIL. A Ctrl-C (KeyboardInterrupt from
// the signal handler) ends the slice with "interrupted"; the runner stays at
// its last committed step. Any other error from a signal handler propagates.
std::string advance(Runner& runner, Index max_steps, double max_seconds)
{
    SignalPoller poller;
    try {
        py::gil_scoped_release release;
        InterruptScope scope(poller.checker());
        return status_name(runner.advance(max_steps, max_seconds));
    } catch (const Interrupted&) {
        try {
            poller.raise();
        } catch (py::error_already_set& e) {
            if (e.matches(PyExc_KeyboardInterrupt)) return status_name(RunStatus::interrupted);
            throw;
        }
    }
}

// A runner state's status: only those the C++ loop itself sets.
RunStatus parse_status(const std::string& s)
{
    for (const RunStatusInfo& info : kRunStatuses)
        if (info.from_loop && s == info.name) return info.status;
    throw std::invalid_argument("unknown runner status '" + s + "'");
}

py::tuple column_table(const ColumnInfo* columns, Index count)
{
    py::list out;
    for (Index i = 0; i < count; ++i) out.append(py::cast(columns[i], py::return_value_policy::copy));
    return py::tuple(out);
}

py::dict export_state(Runner& runner)
{
    const RunnerState& s = runner.state();
    py::dict d;
    d["step"] = s.step;
    d["x"] = s.x;
    d["optimizer_state"] = s.optimizer_state;
    d["status"] = std::string(status_name(s.status));
    d["loss0"] = s.loss0;
    d["eos_onset"] = s.eos_onset;
    d["hvps"] = s.hvps;
    d["last_loss"] = s.last_loss;
    d["last_grad_norm"] = s.last_grad_norm;
    d["last_sharpness"] = s.last_sharpness;
    d["pending"] = s.pending;
    d["pending_point"] = s.pending_point;
    return d;
}

void import_state(Runner& runner, const py::dict& d)
{
    RunnerState s;
    s.step = d["step"].cast<Index>();
    s.x = d["x"].cast<Vector>();
    s.optimizer_state = d["optimizer_state"].cast<Vector>();
    s.status = parse_status(d["status"].cast<std::string>());
    s.loss0 = d["loss0"].cast<double>();
    s.eos_onset = d["eos_onset"].cast<Index>();
    s.hvps = d["hvps"].cast<Index>();
    s.last_loss = d["last_loss"].cast<double>();
    s.last_grad_norm = d["last_grad_norm"].cast<double>();
    s.last_sharpness = d["last_sharpness"].cast<double>();
    s.pending = d["pending"].cast<Vector>();
    s.pending_point = d["pending_point"].cast<Vector>();
    runner.restore(s);
}

void init_optimizers(py::module_& m)
{
    py::class_<Schedule>(m, "Schedule", py::module_local())
        .def_static("constant", &Schedule::constant, py::arg("lr"))
        .def_static("linear_warmup", &Schedule::linear_warmup, py::arg("lr"), py::arg("warmup_steps"))
        .def_static("cosine", &Schedule::cosine, py::arg("lr"), py::arg("total_steps"), py::arg("lr_min"),
                    py::arg("warmup_steps"))
        .def_static("array", &Schedule::array, py::arg("values"))
        .def("at", &Schedule::at, py::arg("t"))
        .def("values_until",
             [](const Schedule& s, Index n) {
                 require(n >= 0 && n <= s.length(), "n must be in [0, the schedule's length]");
                 Vector out(n);
                 for (Index t = 0; t < n; ++t) out[t] = s.at(t);
                 return out;
             })
        .def_property_readonly("length", &Schedule::length)
        .def_property_readonly("kind", &Schedule::kind_name)
        .def_property_readonly("lr", &Schedule::lr)
        .def_property_readonly("lr_min", &Schedule::lr_min)
        .def_property_readonly("warmup_steps", &Schedule::warmup_steps)
        .def_property_readonly("total_steps", &Schedule::total_steps)
        .def_property_readonly("values", &Schedule::values);

    // The one table of optimizer names (optimizer_names.hpp); Python derives every spelling from it.
    py::class_<OptimizerNames>(m, "OptimizerNames", py::module_local())
        .def_property_readonly("name", [](const OptimizerNames& n) { return std::string(n.name); })
        .def_property_readonly("config", [](const OptimizerNames& n) { return std::string(n.config); })
        .def_property_readonly("flow", [](const OptimizerNames& n) { return std::string(n.flow); })
        .def_property_readonly("title", [](const OptimizerNames& n) { return std::string(n.title); })
        .def_property_readonly("indicators",
                               [](const OptimizerNames& n) {
                                   py::list out;
                                   for (const char* name : n.indicators)
                                       if (name) out.append(name);
                                   return py::tuple(out);
                               })
        .def("__repr__", [](const OptimizerNames& n) {
            return std::string("OptimizerNames(name='") + n.name + "', config='" + n.config + "', flow='" +
                   n.flow + "')";
        });
    py::list names;
    for (const OptimizerNames& n : kOptimizerNames) names.append(py::cast(n, py::return_value_policy::copy));
    m.attr("OPTIMIZER_NAMES") = py::tuple(names);

    py::class_<Optimizer, std::shared_ptr<Optimizer>>(m, "Optimizer", py::module_local())
        .def_property_readonly("name", &Optimizer::name)
        .def_property_readonly("schedule", &Optimizer::schedule)
        .def("effective_lr", &Optimizer::effective_lr, py::arg("lr"), py::arg("loss"), py::arg("grad_norm"))
        .def("threshold", &Optimizer::threshold, py::arg("lr"), py::arg("loss"), py::arg("grad_norm"))
        .def("objective", &Optimizer::objective, py::arg("loss"))
        .def("can_step", &Optimizer::can_step, py::arg("loss"), py::arg("grad_norm"));

    py::class_<GD, Optimizer, std::shared_ptr<GD>>(m, optimizer_names(OptimizerKind::GD).name,
                                                   py::module_local())
        .def(py::init<Schedule, double, bool>(), py::arg("schedule"), py::arg("momentum"),
             py::arg("nesterov"))
        .def_property_readonly("momentum", &GD::momentum)
        .def_property_readonly("nesterov", &GD::nesterov);
    py::class_<NormalizedGD, Optimizer, std::shared_ptr<NormalizedGD>>(
        m, optimizer_names(OptimizerKind::NormalizedGD).name, py::module_local())
        .def(py::init<Schedule>(), py::arg("schedule"));
    py::class_<PowerLossGD, Optimizer, std::shared_ptr<PowerLossGD>>(
        m, optimizer_names(OptimizerKind::PowerLossGD).name, py::module_local())
        .def(py::init<Schedule, double, double>(), py::arg("schedule"), py::arg("p"), py::arg("loss_min"))
        .def_property_readonly("p", &PowerLossGD::p)
        .def_property_readonly("loss_min", &PowerLossGD::loss_min);
    py::class_<SqrtGD, PowerLossGD, std::shared_ptr<SqrtGD>>(m, optimizer_names(OptimizerKind::SqrtGD).name,
                                                             py::module_local())
        .def(py::init<Schedule, double>(), py::arg("schedule"), py::arg("loss_min"));
}

// The record columns, statuses and run defaults, declared once in C++ (records.hpp,
// runner.hpp); the Python trajectory, checkpoint checks, config checker and HDF5 schema use these.
void init_run_tables(py::module_& m)
{
    py::class_<ColumnInfo>(m, "ColumnInfo", py::module_local())
        .def_property_readonly("name", [](const ColumnInfo& c) { return std::string(c.name); })
        .def_property_readonly("description", [](const ColumnInfo& c) { return std::string(c.description); })
        .def_property_readonly("units", [](const ColumnInfo& c) { return std::string(c.units); })
        .def("__repr__", [](const ColumnInfo& c) { return std::string("ColumnInfo(name='") + c.name + "')"; });
    m.attr("SCALAR_COLUMNS") = column_table(kScalarColumnInfo, ScalarColumns::count);
    m.attr("SHARPNESS_COLUMNS") = column_table(kSharpnessColumnInfo, SharpnessColumns::count);
    m.attr("SHARPNESS_BLOCKS") = column_table(kSharpnessBlockInfo, kSharpnessBlocks);
    py::list kinds;
    for (const char* kind : kRecordKinds) kinds.append(kind);
    m.attr("RECORD_KINDS") = py::tuple(kinds);

    py::class_<RunStatusInfo>(m, "RunStatusInfo", py::module_local())
        .def_property_readonly("name", [](const RunStatusInfo& s) { return std::string(s.name); })
        .def_readonly("ended", &RunStatusInfo::ended)
        .def_readonly("from_loop", &RunStatusInfo::from_loop)
        .def_property_readonly("meaning", [](const RunStatusInfo& s) { return std::string(s.meaning); })
        .def("__repr__", [](const RunStatusInfo& s) {
            return std::string("RunStatusInfo(name='") + s.name + "', ended=" + (s.ended ? "True" : "False") + ")";
        });
    py::list statuses;
    for (const RunStatusInfo& s : kRunStatuses) statuses.append(py::cast(s, py::return_value_policy::copy));
    m.attr("RUN_STATUSES") = py::tuple(statuses);

    py::class_<RunConfig>(m, "RunConfig", py::module_local())
        .def(py::init<>())
        .def_readonly("steps", &RunConfig::steps)
        .def_readonly("record_every", &RunConfig::record_every)
        .def_readonly("sharpness_every", &RunConfig::sharpness_every)
        .def_readonly("save_iterates_every", &RunConfig::save_iterates_every)
        .def_readonly("diverge_factor", &RunConfig::diverge_factor)
        .def_readonly("buffer_rows", &RunConfig::buffer_rows);
    m.attr("diverge_floor") = kDivergeFloor;
}

void init_runner(py::module_& m)
{
    init_run_tables(m);
    py::class_<Runner, std::shared_ptr<Runner>>(m, "Runner", py::module_local())
        .def(py::init([](std::shared_ptr<Problem> problem, const Optimizer& optimizer, ConstVecRef x0,
                         Index steps, Index record_every, Index sharpness_every, Index save_iterates_every,
                         double diverge_factor, Index buffer_rows, SharpnessTracker* tracker) {
                 RunConfig cfg;
                 cfg.steps = steps;
                 cfg.record_every = record_every;
                 cfg.sharpness_every = sharpness_every;
                 cfg.save_iterates_every = save_iterates_every;
                 cfg.diverge_factor = diverge_factor;
                 cfg.buffer_rows = buffer_rows;
                 return std::make_shared<Runner>(std::move(problem), optimizer.clone(), x0, cfg, tracker);
             }),
             py::arg("problem"), py::arg("optimizer"), py::arg("x0"), py::arg("steps"),
             py::arg("record_every"), py::arg("sharpness_every"), py::arg("save_iterates_every"),
             py::arg("diverge_factor"), py::arg("buffer_rows"), py::arg("tracker").none(true),
             py::keep_alive<1, 11>())
        .def("advance", &advance, py::arg("max_steps"), py::arg("max_seconds"))
        .def("take_records",
             [](Runner& r) {
                 py::dict d;
                 RecordBuffer* buffers[] = {&r.scalars(), &r.sharpness(), &r.iterates()};
                 for (int i = 0; i < 3; ++i) d[kRecordKinds[i]] = drain(*buffers[i]);
                 return d;
             })
        .def("state", &export_state)
        .def("restore", &import_state, py::arg("state"))
        .def_property_readonly("step", &Runner::step)
        .def_property_readonly("width", &Runner::width)
        .def_property_readonly("status", [](const Runner& r) { return std::string(status_name(r.status())); })
        .def_property_readonly("last",
                               [](Runner& r) {
                                   const RunnerState& s = r.state();
                                   return py::make_tuple(s.last_loss, s.last_grad_norm, s.last_sharpness);
                               })
        .def_property_readonly("x", [](Runner& r) { return r.state().x; })
        // read without exporting (copying) the whole state: per progress tick and callback
        .def_property_readonly("hvps", [](Runner& r) { return r.state().hvps; })
        .def_property_readonly("eos_onset", [](Runner& r) { return r.state().eos_onset; });
}

void init_gradient_flow(py::module_& m)
{
    // The C++ result itself, read-only (one source of truth for its fields).
    py::class_<FlowResult>(m, "FlowResult", py::module_local(), R"doc(The result of :func:`eosfast.gradient_flow` (read-only).

Attributes
----------
x : ndarray (dim,)
    The final state.
t : float
    The integration time reached (the Newton end game adds none: its limit is t = inf).
loss, grad_norm : float
    At ``x``.
converged : bool
    True when ``t_end`` was reached or |grad L(x)| <= gtol.
status : str
    "completed" (t_end reached), "converged" (gtol reached), "max_steps",
    "step_size_underflow" or "diverged".
times : ndarray (m,)
    The requested times, and ``states`` (m, dim) the states there (NaN for
    times the integration did not reach).
steps, rejected, grad_evals, hvps, newton_steps : int
    Accepted / rejected Dormand-Prince steps, gradient evaluations, Hessian-
    vector products and Newton steps of the end game.
stiff : bool
    Whether the stiffness test fired.)doc")
        .def_readonly("x", &FlowResult::x)
        .def_readonly("t", &FlowResult::t)
        .def_readonly("loss", &FlowResult::loss)
        .def_readonly("grad_norm", &FlowResult::grad_norm)
        .def_readonly("converged", &FlowResult::converged)
        .def_readonly("status", &FlowResult::status)
        .def_readonly("steps", &FlowResult::steps)
        .def_readonly("rejected", &FlowResult::rejected)
        .def_readonly("grad_evals", &FlowResult::grad_evals)
        .def_readonly("hvps", &FlowResult::hvps)
        .def_readonly("newton_steps", &FlowResult::newton_steps)
        .def_readonly("stiff", &FlowResult::stiff)
        .def_readonly("times", &FlowResult::times)
        .def_property_readonly("states", [](const FlowResult& r) { return Matrix(r.states.transpose()); },
                               "The states at ``times``, shape (m, dim).")
        .def("__repr__", [](const FlowResult& r) {
            return "FlowResult(status='" + r.status + "', t=" + std::to_string(r.t) +
                   ", loss=" + std::to_string(r.loss) + ", grad_norm=" + std::to_string(r.grad_norm) +
                   ", steps=" + std::to_string(r.steps) + ")";
        });

    m.def(
        "gradient_flow",
        [](const Problem& problem, ConstVecRef x0, double t_end, const Vector& times, double rtol,
           double atol, double gtol, Index max_steps, double first_step, double max_step, bool dense_output,
           bool endgame, Index newton_max_iter, Index cg_max_iter) {
            FlowOptions o;
            o.rtol = rtol;
            o.atol = atol;
            o.gtol = gtol;
            o.max_steps = max_steps;
            o.first_step = first_step;
            o.max_step = max_step;
            o.dense_output = dense_output;
            o.endgame = endgame;
            o.newton_max_iter = newton_max_iter;
            o.cg_max_iter = cg_max_iter;
            return call_released([&] { return gradient_flow(problem, x0, t_end, times, o); });
        },
        py::arg("problem"), py::arg("x0"), py::arg("t_end"), py::arg("times"), py::arg("rtol"),
        py::arg("atol"), py::arg("gtol"), py::arg("max_steps"), py::arg("first_step"), py::arg("max_step"),
        py::arg("dense_output"), py::arg("endgame"), py::arg("newton_max_iter"), py::arg("cg_max_iter"));
}

}  // namespace

void init_dynamics(py::module_& m)
{
    init_optimizers(m);
    init_runner(m);
    init_gradient_flow(m);
}

}  // namespace eosfast::bindings
