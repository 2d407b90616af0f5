// The loss heads of an MLP: the per-sample loss l(F_i) on the network output
// F_i and its derivatives, as the passes need them.
//
//   mse: l = 1/2 ||F_i - y_i||^2               ce: l = logsumexp(F_i) - F_{i,y_i}
//   l'(F) = F - y                               l'(F) = P - e_y,  P = softmax(F)
//   l''(F) R = R                                l''(F) R = P (R - P.R)        (elementwise in P)
// The third-derivative pass needs the adjoints of phi = l''(F)[RF, RF] + l'(F) QF
// with respect to F, RF and QF (see mlp.hpp). Every value carries the 1/n of
// the mean over samples except the loss itself, which the caller divides.
// The MSE/CE choice is made in one place, visit_head; the passes are
// templates over the head.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>

#include "../core/types.hpp"

namespace eosfast {

enum class MLPLoss { MSE, CrossEntropy };

// The names of the losses, in the order of the enum (exported as _core.MLP_LOSSES).
inline constexpr std::array<const char*, 2> kMLPLossNames{"mse", "ce"};

inline MLPLoss parse_mlp_loss(const std::string& name)
{
    for (size_t i = 0; i < kMLPLossNames.size(); ++i)
        if (name == kMLPLossNames[i]) return static_cast<MLPLoss>(i);
    throw std::invalid_argument(std::string("loss must be '") + kMLPLossNames[0] + "' or '" +
                                kMLPLossNames[1] + "', got '" + name + "'");
}

inline const char* mlp_loss_name(MLPLoss loss) { return kMLPLossNames[static_cast<size_t>(loss)]; }

using LabelVector = Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>;

namespace detail {

// Mean squared error against the targets Yt (k, n), one sample per column.
struct MSEHead {
    static constexpr bool kProbabilities = false;  // whether P is kept for the HVP
    const Matrix& Yt;

    // l(F_j) of sample i; with D, writes l'(F_j) / n into column j of D.
    double value(const Matrix& F, Index j, Index i, double inv_n, Matrix* D, Matrix*) const
    {
        double value = 0.0;
        for (Index k = 0; k < F.rows(); ++k) {
            const double r = F(k, j) - Yt(k, i);
            value += r * r;
            if (D) (*D)(k, j) = r * inv_n;
        }
        return 0.5 * value;
    }

    // Column col of RD = l''(F) RF / n, RF's column col belonging to sample column j.
    void second(const Matrix&, const Matrix& RF, Index col, Index, double inv_n, Matrix& RD) const
    {
        RD.col(col) = RF.col(col) * inv_n;
    }

    // Adjoints of phi / n with respect to F, RF, QF at sample column j (sample i).
    void third(const Matrix& F, const Matrix& RF, const Matrix& QF, Index j, Index i, double inv_n,
               Matrix& Zb, Matrix& RZb, Matrix& QZb) const
    {
        for (Index k = 0; k < F.rows(); ++k) {
            Zb(k, j) = QF(k, j) * inv_n;
            RZb(k, j) = 2.0 * RF(k, j) * inv_n;
            QZb(k, j) = (F(k, j) - Yt(k, i)) * inv_n;
        }
    }
};

// Softmax cross-entropy against class labels.
struct CrossEntropyHead {
    static constexpr bool kProbabilities = true;
    const LabelVector& labels;

    // log sum_k exp(F(k, j)), shifted by the maximum so it cannot overflow.
    static double log_sum_exp(const Matrix& F, Index j)
    {
        double mx = F(0, j);
        for (Index k = 1; k < F.rows(); ++k) mx = std::max(mx, F(k, j));
        double sum = 0.0;
        for (Index k = 0; k < F.rows(); ++k) sum += std::exp(F(k, j) - mx);
        return mx + std::log(sum);
    }

    // l(F_j) of sample i; with D, writes l'(F_j) / n into column j of D and softmax(F_j) into P.
    double value(const Matrix& F, Index j, Index i, double inv_n, Matrix* D, Matrix* P) const
    {
        const Index y = static_cast<Index>(labels[i]);
        const double lse = log_sum_exp(F, j);
        if (D) {
            for (Index k = 0; k < F.rows(); ++k) {
                const double pk = std::exp(F(k, j) - lse);
                (*P)(k, j) = pk;
                (*D)(k, j) = (pk - (k == y ? 1.0 : 0.0)) * inv_n;
            }
        }
        return lse - F(y, j);
    }

    void second(const Matrix& P, const Matrix& RF, Index col, Index j, double inv_n, Matrix& RD) const
    {
        double s = 0.0;
        for (Index k = 0; k < RF.rows(); ++k) s += P(k, j) * RF(k, col);
        for (Index k = 0; k < RF.rows(); ++k) RD(k, col) = P(k, j) * (RF(k, col) - s) * inv_n;
    }

    void third(const Matrix& F, const Matrix& RF, const Matrix& QF, Index j, Index i, double inv_n,
               Matrix& Zb, Matrix& RZb, Matrix& QZb) const
    {
        const Index y = static_cast<Index>(labels[i]);
        const double lse = log_sum_exp(F, j);
        double s = 0.0, t2 = 0.0, q = 0.0;
        for (Index k = 0; k < F.rows(); ++k) {
            const double pk = std::exp(F(k, j) - lse);
            s += pk * RF(k, j);
            t2 += pk * RF(k, j) * RF(k, j);
            q += pk * QF(k, j);
        }
        for (Index k = 0; k < F.rows(); ++k) {
            const double pk = std::exp(F(k, j) - lse), d = RF(k, j) - s;
            // d/dF of P.RF^2 - (P.RF)^2 is P (d^2 - (t - s^2)); l''(F) QF = P (QF - P.QF)
            Zb(k, j) = pk * (d * d - (t2 - s * s) + QF(k, j) - q) * inv_n;
            RZb(k, j) = 2.0 * pk * d * inv_n;
            QZb(k, j) = (pk - (k == y ? 1.0 : 0.0)) * inv_n;
        }
    }
};

}  // namespace detail

// Calls f with the head of `loss`: the one place the MSE/CE choice is made.
template <class F>
decltype(auto) visit_head(MLPLoss loss, const Matrix& Yt, const LabelVector& labels, F&& f)
{
    if (loss == MLPLoss::MSE) return f(detail::MSEHead{Yt});
    return f(detail::CrossEntropyHead{labels});
}

}  // namespace eosfast
