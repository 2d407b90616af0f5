// The trajectory runner: the GD loop, its records, divergence and convergence
// rules, sharpness measurements and the EoS indicators. It runs in slices
// (advance) so that the host can drain records, write checkpoints and call
// back between them; its whole state can be exported and restored, so a
// restored run continues bitwise identically.
//
// Step t (x_t -> x_{t+1}) is one transaction: evaluate L and grad L at x_t,
// check the stop rules, measure the sharpness, then commit (records, the
// update). Everything that can throw (the problem, the tracker, an
// interruption) happens before the commit, so an exception leaves the runner
// at the last committed step.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>

#include "../core/interrupt.hpp"
#include "../core/vector_ops.hpp"
#include "../problems/problem.hpp"
#include "../spectrum/tracker.hpp"
#include "optimizer.hpp"
#include "records.hpp"

namespace eosfast {

// Every status a run can have. The C++ loop itself ends a run only as completed, converged or
// diverged; the host's loop adds interrupted (a signal) and stopped_by_callback.
enum class RunStatus { running, completed, converged, diverged, interrupted, stopped_by_callback, count };

struct RunStatusInfo {
    RunStatus status;
    const char* name;
    bool ended;      // the run reached its own end: resuming it has nothing left to do
    bool from_loop;  // the C++ loop sets it (and a checkpoint's runner state may hold it)
    const char* meaning;
};

inline constexpr RunStatusInfo kRunStatuses[static_cast<int>(RunStatus::count)] = {
    {RunStatus::running, "running", false, true, "the run goes on (or was killed while it went)"},
    {RunStatus::completed, "completed", true, true, "all the steps were taken"},
    {RunStatus::converged, "converged", true, true,
     "NormalizedGD at a zero gradient, SqrtGD / PowerLossGD at L <= loss_min"},
    {RunStatus::diverged, "diverged", true, true,
     "L is not finite or |L| > diverge_factor max(|L(x0)|, diverge_floor)"},
    {RunStatus::interrupted, "interrupted", false, false,
     "SIGINT or SIGTERM: the records and a checkpoint of the last committed step"},
    {RunStatus::stopped_by_callback, "stopped_by_callback", false, false,
     "the callback returned True; resume continues the run"},
};

inline const char* status_name(RunStatus s) { return kRunStatuses[static_cast<int>(s)].name; }

// The divergence rule's scale floor: a run diverges when |L| > diverge_factor *
// max(|L(x_0)|, kDivergeFloor). Without it a run that starts at a loss near
// zero (e.g. from a minimiser, L_0 = 1e-17) "diverges" at the first rise to
// an ordinary value; losses are O(1) in the problems eosfast ships.
inline constexpr double kDivergeFloor = 1.0;

struct RunConfig {
    Index steps = 0;  // the run ends at x_steps
    Index record_every = 1;
    Index sharpness_every = 0;      // 0: never
    Index save_iterates_every = 0;  // 0: never
    double diverge_factor = 1e6;    // stop when |L| > factor max(|L_0|, kDivergeFloor); inf: only non-finite losses stop
    Index buffer_rows = kRecordBufferRows;  // rows per record buffer between drains
};

// The state a checkpoint needs besides the tracker's own.
struct RunnerState {
    Index step = 0;
    Vector x;
    Vector optimizer_state;
    RunStatus status = RunStatus::running;
    double loss0 = std::numeric_limits<double>::quiet_NaN();  // NaN before the first evaluation
    Index eos_onset = -1;
    Index hvps = 0;
    double last_loss = std::numeric_limits<double>::quiet_NaN();
    double last_grad_norm = std::numeric_limits<double>::quiet_NaN();
    double last_sharpness = std::numeric_limits<double>::quiet_NaN();
    Vector pending;        // a sharpness row waiting for L and |g| at the next step (empty: none)
    Vector pending_point;  // (loss, grad_norm, lr) at the pending row's step
};

namespace detail {
// dot() for the short vectors of toy problems without dot()'s allocation; same result.
inline double run_dot(const Vector& a, const Vector& b)
{
    if (a.size() <= kVectorChunk) return 0.0 + fixed_dot(a.data(), b.data(), a.size());
    return dot(a, b);
}

// Calls check_interrupt and reads the clock every `every` steps, with `every`
// adapted so that checks happen every 1-4 ms whatever a step costs.
class Pacer {
public:
    using Clock = std::chrono::steady_clock;
    explicit Pacer(double max_seconds) : m_start(Clock::now()), m_last(m_start), m_budget(max_seconds) {}
    // True when the time budget is spent.
    bool tick()
    {
        if (++m_count < m_every) return false;
        m_count = 0;
        const auto now = Clock::now();
        const double dt = std::chrono::duration<double>(now - m_last).count();
        m_last = now;
        if (dt < 1e-3 && m_every < (Index(1) << 20))
            m_every *= 2;
        else if (dt > 4e-3 && m_every > 1)
            m_every /= 2;
        check_interrupt();
        return std::chrono::duration<double>(now - m_start).count() >= m_budget;
    }

private:
    Clock::time_point m_start, m_last;
    double m_budget;
    Index m_every = 1, m_count = 0;
};
// t mod record_every, sharpness_every and save_iterates_every, kept without a
// division per step (-1: never).
struct Phases {
    Index record = 0, sharpness = -1, iterates = -1;
    void reset(Index t, const RunConfig& c)
    {
        record = t % c.record_every;
        sharpness = c.sharpness_every > 0 ? t % c.sharpness_every : -1;
        iterates = c.save_iterates_every > 0 ? t % c.save_iterates_every : -1;
    }
    static void next(Index& phase, Index every)
    {
        if (phase >= 0 && ++phase == every) phase = 0;
    }
    void advance(const RunConfig& c)
    {
        next(record, c.record_every);
        next(sharpness, c.sharpness_every);
        next(iterates, c.save_iterates_every);
    }
};
}  // namespace detail

class Runner {
public:
    static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

    Runner(std::shared_ptr<const Problem> problem, std::unique_ptr<Optimizer> optimizer, ConstVecRef x0,
           RunConfig config, SharpnessTracker* tracker)
        : m_problem(std::move(problem)),
          m_opt(std::move(optimizer)),
          m_tracker(tracker),
          m_cfg(config),
          m_n(m_problem->dim()),
          m_width(tracked_width()),
          m_g(m_n),
          m_delta(m_n),
          m_scalars(ScalarColumns::count, config.buffer_rows),
          m_sharpness(SharpnessColumns::count + kSharpnessBlocks * m_width, config.buffer_rows),
          m_iterates(1 + m_n, iterate_rows())
    {
        m_problem->check_dim(x0, "x0");
        require(m_cfg.steps >= 0, "steps must be >= 0");
        require(m_cfg.record_every >= 1, "record_every must be >= 1");
        require(m_cfg.sharpness_every >= 0 && m_cfg.save_iterates_every >= 0,
                "sharpness_every and save_iterates_every must be >= 0");
        require(m_cfg.sharpness_every == 0 || m_tracker, "sharpness_every > 0 needs a tracker");
        require(m_cfg.diverge_factor > 1.0, "diverge_factor must be > 1");
        require(m_opt->schedule().length() >= m_cfg.steps,
                "the learning-rate array has " + std::to_string(m_opt->schedule().length()) +
                    " entries, fewer than steps = " + std::to_string(m_cfg.steps));
        m_s.x = x0;
        m_opt->reset(m_n);
        m_phase.reset(0, m_cfg);
        m_s.optimizer_state = m_opt->state();
    }

    const RunConfig& config() const { return m_cfg; }
    const Optimizer& optimizer() const { return *m_opt; }
    const Problem& problem() const { return *m_problem; }
    Index width() const { return m_width; }
    Index step() const { return m_s.step; }
    RunStatus status() const { return m_s.status; }
    const RunnerState& state()
    {
        m_s.optimizer_state = m_opt->state();
        return m_s;
    }
    void restore(const RunnerState& s)
    {
        require(s.x.size() == m_n, "the saved iterate has the wrong length");
        require(s.step >= 0 && s.step <= m_cfg.steps, "the saved step is outside [0, steps]");
        require(s.hvps >= 0 && s.eos_onset >= -1 && s.eos_onset <= s.step,
                "the saved HVP count or EoS onset is out of range");
        require(s.pending.size() == 0 || s.pending.size() == m_sharpness.cols(),
                "the saved pending row is malformed");
        m_opt->set_state(s.optimizer_state);
        m_s = s;
        m_phase.reset(s.step, m_cfg);
    }

    RecordBuffer& scalars() { return m_scalars; }
    RecordBuffer& sharpness() { return m_sharpness; }
    RecordBuffer& iterates() { return m_iterates; }

    // Runs at most max_steps steps (and the closing evaluation at x_steps),
    // returning early on a stop, a full record buffer or after max_seconds.
    RunStatus advance(Index max_steps, double max_seconds)
    {
        detail::Pacer pacer(max_seconds);
        for (Index done = 0; m_s.status == RunStatus::running; ++done) {
            if (done >= max_steps && m_s.step < m_cfg.steps) break;
            if (m_scalars.free() < 2 || m_sharpness.free() < 2 || m_iterates.free() < 2) break;
            if (done > 0 && pacer.tick()) break;
            iterate(m_s.step >= m_cfg.steps);
        }
        return m_s.status;
    }

private:
    Index tracked_width() const
    {
        if (!m_tracker || m_cfg.sharpness_every == 0) return 0;
        const TrackerOptions& o = m_tracker->options();
        return std::isnan(o.grow_above) ? o.k : std::max(o.k, o.max_k);
    }
    Index iterate_rows() const
    {
        if (m_cfg.save_iterates_every == 0) return 4;
        return std::max<Index>(4, std::min<Index>(m_cfg.buffer_rows, (Index(1) << 23) / (1 + m_n)));
    }
    double lr_at(Index t) const { return m_opt->schedule().at(std::min(t, m_opt->schedule().length() - 1)); }
    double vnorm(const Vector& v) const { return std::sqrt(detail::run_dot(v, v)); }

    void iterate(bool final_point)
    {
        const Index t = m_s.step;
        const double loss = m_problem->loss_and_grad(m_s.x, m_g);
        const double loss0 = std::isnan(m_s.loss0) ? loss : m_s.loss0;
        const bool finite = std::isfinite(loss);
        const bool diverged =
            !finite || std::abs(loss) > m_cfg.diverge_factor * std::max(std::abs(loss0), kDivergeFloor);
        // |g| only where something uses it (plain GD between records needs none).
        const bool need_norm = m_opt->needs_grad_norm() || m_phase.record == 0 || m_phase.sharpness == 0 ||
                               m_s.pending.size() > 0 || final_point || diverged;
        const double gnorm = need_norm ? vnorm(m_g) : kNaN;
        const double lr = lr_at(t);
        const PointInfo here{loss, gnorm, lr};

        RunStatus stop = final_point ? RunStatus::completed : RunStatus::running;
        if (diverged)
            stop = RunStatus::diverged;
        else if (!m_opt->can_step(loss, gnorm))
            stop = RunStatus::converged;

        const bool measure = m_phase.sharpness == 0 && finite;
        Index kk = 0, matvecs = 0;
        if (measure) {
            const auto H = m_problem->hessian(m_s.x);
            const EigenResult& r = m_tracker->measure(*H);
            kk = std::min<Index>(r.eigenvalues.size(), m_width);
            m_lambda = r.eigenvalues.head(kk);
            m_V = r.eigenvectors.leftCols(kk);
            matvecs = r.matvecs;
        }

        // ---- commit: nothing below throws ----
        if (m_s.pending.size() > 0) finalize_pending(here);
        if (m_phase.iterates == 0 || (m_cfg.save_iterates_every > 0 && stop != RunStatus::running)) {
            double* row = m_iterates.push();
            row[0] = static_cast<double>(t);
            std::copy(m_s.x.data(), m_s.x.data() + m_n, row + 1);
        }
        double step_norm = kNaN;
        if (stop == RunStatus::running) {
            m_opt->step(lr, here, m_g, m_s.x, m_delta);
            if (m_phase.record == 0 || measure) step_norm = vnorm(m_delta);
        }
        if (measure) record_sharpness(t, here, kk, matvecs, stop == RunStatus::running, step_norm);
        if (m_phase.record == 0 || stop != RunStatus::running) {
            double* row = m_scalars.push();
            row[ScalarColumns::step] = static_cast<double>(t);
            row[ScalarColumns::loss] = loss;
            row[ScalarColumns::grad_norm] = gnorm;
            row[ScalarColumns::step_norm] = step_norm;
            row[ScalarColumns::lr] = lr;
            const bool defined = finite && stop != RunStatus::converged;  // L <= loss_min: no objective
            row[ScalarColumns::effective_lr] = defined ? m_opt->effective_lr(lr, loss, gnorm) : kNaN;
            row[ScalarColumns::objective] = defined ? m_opt->objective(loss) : kNaN;
        }
        m_s.loss0 = loss0;
        m_s.last_loss = loss;
        m_s.last_grad_norm = gnorm;
        m_s.status = stop;
        if (stop == RunStatus::running) {
            ++m_s.step;
            m_phase.advance(m_cfg);
        }
    }

    void record_sharpness(Index t, const PointInfo& here, Index kk, Index matvecs, bool stepped,
                          double step_norm)
    {
        // Overlaps with the tracker's eigenvectors, whose signs it aligns with
        // its previous measurement: the step's overlap then flips sign with the
        // period-2 oscillation across the valley, not with the eigensolver.
        m_s.hvps += matvecs;
        const double lambda1 = kk > 0 ? m_lambda[0] : kNaN;
        m_s.last_sharpness = lambda1;
        const double threshold = m_opt->threshold(here.lr, here.loss, here.grad_norm);
        if (m_s.eos_onset < 0 && lambda1 >= threshold) m_s.eos_onset = t;

        Vector& row = m_s.pending;
        row = Vector::Constant(m_sharpness.cols(), kNaN);
        row[SharpnessColumns::step] = static_cast<double>(t);
        row[SharpnessColumns::threshold] = threshold;
        row[SharpnessColumns::ratio] = lambda1 / threshold;
        row[SharpnessColumns::hvps] = static_cast<double>(matvecs);
        const Index base = SharpnessColumns::count;
        for (Index j = 0; j < kk; ++j) {
            m_tmp = m_V.col(j);
            row[base + j] = m_lambda[j];
            if (stepped && step_norm > 0.0)
                row[base + m_width + j] = detail::run_dot(m_tmp, m_delta) / step_norm;
            if (here.grad_norm > 0.0)
                row[base + 2 * m_width + j] = detail::run_dot(m_tmp, m_g) / here.grad_norm;
        }
        m_s.pending_point = Eigen::Vector3d(here.loss, here.grad_norm, here.lr);
        if (!stepped) push_pending();  // no step t + 1 to wait for
    }

    void finalize_pending(const PointInfo& next)
    {
        Vector& row = m_s.pending;
        const double lambda1 = row[SharpnessColumns::count];
        const PointInfo at{m_s.pending_point[0], m_s.pending_point[1], m_s.pending_point[2]};
        if (std::isfinite(lambda1) && std::isfinite(next.loss) && std::isfinite(next.grad_norm)) {
            const EosIndicators e = m_opt->indicators(lambda1, at, next);
            row[SharpnessColumns::inv_stableness_sum] = e.inv_stableness_sum;
            row[SharpnessColumns::sqrt_loss_sum] = e.sqrt_loss_sum;
            row[SharpnessColumns::sqrt_loss_reference] = e.sqrt_loss_reference;
        }
        push_pending();
    }

    void push_pending()
    {
        std::copy(m_s.pending.data(), m_s.pending.data() + m_s.pending.size(), m_sharpness.push());
        m_s.pending.resize(0);
        m_s.pending_point.resize(0);
    }

    std::shared_ptr<const Problem> m_problem;
    std::unique_ptr<Optimizer> m_opt;
    SharpnessTracker* m_tracker;  // not owned: outlives the runner
    RunConfig m_cfg;
    Index m_n, m_width;
    Vector m_g, m_delta, m_lambda, m_tmp;
    Matrix m_V;
    RecordBuffer m_scalars, m_sharpness, m_iterates;
    RunnerState m_s;
    detail::Phases m_phase;
};

}  // namespace eosfast
