// Full-batch update rules. An optimizer owns only its update and what follows
// from it: the effective learning rate on L, the stability threshold on
// lambda_1 = lambda_max(grad^2 L), the objective it descends, and the Edge of
// Stability indicators of Arora, Li & Panigrahi (2022) (docs/theory.md, 2. The
// Edge of Stability and the stability thresholds; 3. Normalized GD and GD on
// sqrt(L); 6. The Phase-II indicators). The runner owns the loop; the names are
// in optimizer_names.hpp.
//
//   GD           v <- beta v + g;  x <- x - lr v               (beta = 0: plain GD)
//                Nesterov (PyTorch):  x <- x - lr (g + beta v)
//                threshold 2/lr, (2 + 2 beta)/lr, (2 + 2 beta)/((1 + 2 beta) lr)
//   NormalizedGD x <- x - lr g / |g|,  lr_t = lr / |g|,  threshold 2 / lr_t
//   PowerLossGD  GD with constant lr on (L - L_min)^p:
//                x <- x - lr p (L - L_min)^(p-1) g,  lr_t = lr p (L - L_min)^(p-1),  threshold 2 / lr_t
//   SqrtGD       p = 1/2:  x <- x - lr g / (2 sqrt(L - L_min)),  threshold 4 sqrt(L - L_min) / lr
#pragma once

#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "../core/types.hpp"
#include "optimizer_names.hpp"
#include "schedule.hpp"

namespace eosfast {

namespace detail {
// delta = c v, x += delta, elementwise (plain loops: no Eigen set-up cost on the
// tiny vectors of toy problems; the same rounding as x + c v).
inline void scaled_step(double c, const double* v, double* x, double* delta, Index n)
{
    for (Index i = 0; i < n; ++i) {
        delta[i] = c * v[i];
        x[i] += delta[i];
    }
}
}  // namespace detail

// Loss and gradient norm at one iterate, with the scheduled lr of the step taken from it.
struct PointInfo {
    double loss = 0.0;
    double grad_norm = 0.0;
    double lr = 0.0;
};

// EoS indicators at a sharpness measurement t (NaN where an optimizer has none):
//   inv_stableness_sum   1/S_t + 1/S_{t+1},  S = lr_eff lambda_1                    (NGD; ~1 in Phase II)
//   sqrt_loss_sum        sqrt(L_t - L_min) + sqrt(L_{t+1} - L_min)                   (NGD, SqrtGD)
//   sqrt_loss_reference  lr sqrt(lambda_1 / 2) (NGD) or lr lambda_1 / 2 (SqrtGD), its Phase-II value
struct EosIndicators {
    double inv_stableness_sum = std::numeric_limits<double>::quiet_NaN();
    double sqrt_loss_sum = std::numeric_limits<double>::quiet_NaN();
    double sqrt_loss_reference = std::numeric_limits<double>::quiet_NaN();
};

class Optimizer {
public:
    explicit Optimizer(Schedule schedule) : m_schedule(std::move(schedule)) {}
    virtual ~Optimizer() = default;

    virtual std::string name() const = 0;
    virtual std::unique_ptr<Optimizer> clone() const = 0;

    const Schedule& schedule() const { return m_schedule; }

    // Prepares the state for iterates of length dim (zero momentum).
    virtual void reset(Index dim) {}
    // Whether step, can_step or effective_lr read PointInfo::grad_norm (else the
    // runner computes |g| only for its records).
    virtual bool needs_grad_norm() const { return false; }
    // False when no step is defined at this point (the run has converged).
    virtual bool can_step(double loss, double grad_norm) const { return true; }
    // One update: delta = x_{t+1} - x_t is written, then x += delta.
    virtual void step(double lr, const PointInfo& at, ConstVecRef g, VecRef x, VecRef delta) = 0;

    virtual double effective_lr(double lr, double loss, double grad_norm) const { return lr; }
    virtual double threshold(double lr, double loss, double grad_norm) const
    {
        return 2.0 / effective_lr(lr, loss, grad_norm);
    }
    virtual double objective(double loss) const { return loss; }
    virtual EosIndicators indicators(double lambda1, const PointInfo& t, const PointInfo& next) const
    {
        return {};
    }

    // Internal state (momentum) for checkpoints; empty when stateless.
    virtual Vector state() const { return Vector(); }
    virtual void set_state(const Vector& state) {}

private:
    Schedule m_schedule;
};

class GD : public Optimizer {
public:
    GD(Schedule schedule, double momentum, bool nesterov)
        : Optimizer(std::move(schedule)), m_beta(momentum), m_nesterov(nesterov)
    {
        require(std::isfinite(momentum) && momentum >= 0.0 && momentum < 1.0, "momentum must be in [0, 1)");
        require(!nesterov || momentum > 0.0, "nesterov needs momentum > 0");
    }
    std::string name() const override { return optimizer_names(OptimizerKind::GD).name; }
    std::unique_ptr<Optimizer> clone() const override { return std::make_unique<GD>(*this); }
    double momentum() const { return m_beta; }
    bool nesterov() const { return m_nesterov; }

    void reset(Index dim) override { m_v = m_beta > 0.0 ? Vector::Zero(dim) : Vector(); }

    void step(double lr, const PointInfo&, ConstVecRef g, VecRef x, VecRef delta) override
    {
        const Index n = g.size();
        if (m_beta == 0.0) {
            detail::scaled_step(-lr, g.data(), x.data(), delta.data(), n);
            return;
        }
        double* v = m_v.data();
        for (Index i = 0; i < n; ++i) {
            v[i] = m_beta * v[i] + g[i];
            delta[i] = -lr * (m_nesterov ? g[i] + m_beta * v[i] : v[i]);
            x[i] += delta[i];
        }
    }

    double threshold(double lr, double, double) const override
    {
        if (m_nesterov) return (2.0 + 2.0 * m_beta) / ((1.0 + 2.0 * m_beta) * lr);
        return (2.0 + 2.0 * m_beta) / lr;
    }

    Vector state() const override { return m_v; }
    void set_state(const Vector& state) override
    {
        require(state.size() == m_v.size(), "GD state has the wrong length");
        m_v = state;
    }

private:
    double m_beta;
    bool m_nesterov;
    Vector m_v;
};

class NormalizedGD : public Optimizer {
public:
    explicit NormalizedGD(Schedule schedule) : Optimizer(std::move(schedule)) {}
    std::string name() const override { return optimizer_names(OptimizerKind::NormalizedGD).name; }
    std::unique_ptr<Optimizer> clone() const override { return std::make_unique<NormalizedGD>(*this); }

    bool needs_grad_norm() const override { return true; }
    bool can_step(double, double grad_norm) const override { return grad_norm > 0.0; }
    void step(double lr, const PointInfo& at, ConstVecRef g, VecRef x, VecRef delta) override
    {
        detail::scaled_step(-lr / at.grad_norm, g.data(), x.data(), delta.data(), g.size());
    }
    double effective_lr(double lr, double, double grad_norm) const override { return lr / grad_norm; }

    EosIndicators indicators(double lambda1, const PointInfo& t, const PointInfo& next) const override
    {
        EosIndicators out;
        const double s0 = effective_lr(t.lr, t.loss, t.grad_norm) * lambda1;
        const double s1 = effective_lr(next.lr, next.loss, next.grad_norm) * lambda1;
        out.inv_stableness_sum = 1.0 / s0 + 1.0 / s1;
        out.sqrt_loss_sum = std::sqrt(t.loss) + std::sqrt(next.loss);
        out.sqrt_loss_reference = t.lr * std::sqrt(lambda1 / 2.0);
        return out;
    }
};

class PowerLossGD : public Optimizer {
public:
    PowerLossGD(Schedule schedule, double p, double loss_min)
        : Optimizer(std::move(schedule)), m_p(p), m_loss_min(loss_min)
    {
        require(std::isfinite(p) && p > 0.0, "p must be positive and finite");
        require(std::isfinite(loss_min), "loss_min must be finite");
    }
    std::string name() const override { return optimizer_names(OptimizerKind::PowerLossGD).name; }
    std::unique_ptr<Optimizer> clone() const override { return std::make_unique<PowerLossGD>(*this); }
    double p() const { return m_p; }
    double loss_min() const { return m_loss_min; }

    bool can_step(double loss, double) const override { return loss > m_loss_min; }
    void step(double lr, const PointInfo& at, ConstVecRef g, VecRef x, VecRef delta) override
    {
        detail::scaled_step(-effective_lr(lr, at.loss, at.grad_norm), g.data(), x.data(), delta.data(),
                            g.size());
    }
    double effective_lr(double lr, double loss, double) const override
    {
        return lr * m_p * std::pow(loss - m_loss_min, m_p - 1.0);
    }
    double objective(double loss) const override { return std::pow(loss - m_loss_min, m_p); }

protected:
    double m_p, m_loss_min;
};

class SqrtGD : public PowerLossGD {
public:
    SqrtGD(Schedule schedule, double loss_min) : PowerLossGD(std::move(schedule), 0.5, loss_min) {}
    std::string name() const override { return optimizer_names(OptimizerKind::SqrtGD).name; }
    std::unique_ptr<Optimizer> clone() const override { return std::make_unique<SqrtGD>(*this); }

    double effective_lr(double lr, double loss, double) const override
    {
        return lr / (2.0 * std::sqrt(loss - m_loss_min));
    }
    double threshold(double lr, double loss, double) const override
    {
        return 4.0 * std::sqrt(loss - m_loss_min) / lr;
    }
    double objective(double loss) const override { return std::sqrt(loss - m_loss_min); }

    EosIndicators indicators(double lambda1, const PointInfo& t, const PointInfo& next) const override
    {
        EosIndicators out;
        out.sqrt_loss_sum = std::sqrt(t.loss - m_loss_min) + std::sqrt(next.loss - m_loss_min);
        out.sqrt_loss_reference = t.lr * lambda1 / 2.0;
        return out;
    }
};

}  // namespace eosfast
