// Learning-rate schedules: lr_t for the update from x_t to x_{t+1}, t = 0, 1, ...
//   constant:       lr_t = lr
//   linear_warmup:  lr_t = lr (t + 1) / w for t < w, then lr
//   cosine:         linear warmup over w steps, then
//                   lr_t = lr_min + (lr - lr_min) (1 + cos(pi s)) / 2,  s = min(1, (t - w) / (T - w))
//   array:          lr_t = values[t] (the run must not outlast the array)
#pragma once

#include <cmath>
#include <limits>
#include <string>

#include "../core/errors.hpp"
#include "../core/types.hpp"

namespace eosfast {

class Schedule {
public:
    enum class Kind { constant, linear_warmup, cosine, array };

    static Schedule constant(double lr)
    {
        check_lr(lr, "lr");
        Schedule s;
        s.m_lr = lr;
        return s;
    }

    static Schedule linear_warmup(double lr, Index warmup_steps)
    {
        check_lr(lr, "lr");
        require(warmup_steps >= 1, "warmup_steps must be >= 1");
        Schedule s;
        s.m_kind = Kind::linear_warmup;
        s.m_lr = lr;
        s.m_warmup = warmup_steps;
        return s;
    }

    static Schedule cosine(double lr, Index total_steps, double lr_min, Index warmup_steps)
    {
        check_lr(lr, "lr");
        require(std::isfinite(lr_min) && lr_min >= 0.0 && lr_min <= lr, "lr_min must be in [0, lr]");
        require(warmup_steps >= 0, "warmup_steps must be >= 0");
        require(total_steps > warmup_steps, "total_steps must exceed warmup_steps");
        Schedule s;
        s.m_kind = Kind::cosine;
        s.m_lr = lr;
        s.m_lr_min = lr_min;
        s.m_total = total_steps;
        s.m_warmup = warmup_steps;
        return s;
    }

    static Schedule array(Vector values)
    {
        require(values.size() >= 1, "the lr array must not be empty");
        for (Index i = 0; i < values.size(); ++i) check_lr(values[i], "every lr in the array");
        Schedule s;
        s.m_kind = Kind::array;
        s.m_lr = values[0];
        s.m_values = std::move(values);
        return s;
    }

    double at(Index t) const
    {
        switch (m_kind) {
            case Kind::constant:
                return m_lr;
            case Kind::linear_warmup:
                return t < m_warmup ? m_lr * static_cast<double>(t + 1) / static_cast<double>(m_warmup)
                                    : m_lr;
            case Kind::cosine: {
                if (t < m_warmup) return m_lr * static_cast<double>(t + 1) / static_cast<double>(m_warmup);
                const double s = std::min(
                    1.0, static_cast<double>(t - m_warmup) / static_cast<double>(m_total - m_warmup));
                return m_lr_min + (m_lr - m_lr_min) * 0.5 * (1.0 + std::cos(kPi * s));
            }
            case Kind::array:
                return m_values[t];
        }
        return m_lr;
    }

    // The number of steps the schedule defines (array) or the largest Index.
    Index length() const
    {
        return m_kind == Kind::array ? m_values.size() : std::numeric_limits<Index>::max();
    }

    Kind kind() const { return m_kind; }
    std::string kind_name() const
    {
        static const char* names[] = {"constant", "linear_warmup", "cosine", "array"};
        return names[static_cast<int>(m_kind)];
    }
    double lr() const { return m_lr; }
    double lr_min() const { return m_lr_min; }
    Index warmup_steps() const { return m_warmup; }
    Index total_steps() const { return m_total; }
    const Vector& values() const { return m_values; }

private:
    static constexpr double kPi = 3.14159265358979323846;

    static void check_lr(double lr, const char* what)
    {
        require(std::isfinite(lr) && lr > 0.0, std::string(what) + " must be positive and finite");
    }

    Kind m_kind = Kind::constant;
    double m_lr = 0.0, m_lr_min = 0.0;
    Index m_warmup = 0, m_total = 0;
    Vector m_values;
};

}  // namespace eosfast
