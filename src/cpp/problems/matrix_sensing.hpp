// Low-rank matrix problems in the factors U (d1, r), V (d2, r), X = U V^T:
//   MatrixSensing:       L = 1/(2m) sum_i (<A_i, X> - y_i)^2
//   MatrixFactorization: L = 1/2 ||X - M||_F^2
// Both are L = s/2 ||meas(X) - y||^2 for a linear measurement map meas (the
// A_i, or the identity) and a scale s (1/m, or 1). theta = (U.ravel(), V.ravel())
// in row-major order. With S = s meas^*(meas(X) - y) (the gradient in X):
//   grad_U = S V,  grad_V = S^T U
//   H[dU, dV]: dX = dU V^T + U dV^T,  dS = s meas^* meas(dX)
//              (dS V + S dV,  dS^T U + S^T dU)
//   grad (u^T H u) for u = (P, Q): E = s meas^* meas(P V^T + U Q^T), F = s meas^* meas(P Q^T)
//              (2 (E Q + F V),  2 (E^T P + F^T U))
// (u^T H u = s ||meas(P V^T + U Q^T)||^2 + 2 s <meas(X) - y, meas(P Q^T)>.)
#pragma once

#include <memory>
#include <string>

#include "../core/interrupt.hpp"
#include "../core/vector_ops.hpp"
#include "problem.hpp"
#include "tiling.hpp"

namespace eosfast {

namespace detail {

// meas(X) = (<A_i, X>)_i with the A_i stored as the columns of A (d1 d2, m),
// each in row-major order.
class SensingMeasurement {
public:
    SensingMeasurement(Matrix A) : m_A(std::move(A)) {}
    Index count() const { return m_A.cols(); }
    double scale() const { return 1.0 / static_cast<double>(m_A.cols()); }
    const Matrix& A() const { return m_A; }
    // out (m, k) = A^T B for B (d1 d2, k)
    void apply(const Matrix& B, Matrix& out) const
    {
        out.resize(m_A.cols(), B.cols());
        run_tiles(Tiling(m_A.cols(), B.cols(), 1, m_A.rows()), [&](const Tile& t) {
            out.block(t.r0, t.c0, t.rl, t.cl).noalias() =
                m_A.middleCols(t.r0, t.rl).transpose() * B.middleCols(t.c0, t.cl);
        });
    }
    // out (d1 d2, k) = A R for R (m, k)
    void adjoint(const Matrix& R, Matrix& out) const
    {
        out.resize(m_A.rows(), R.cols());
        run_tiles(Tiling(m_A.rows(), R.cols(), 1, m_A.cols()), [&](const Tile& t) {
            out.block(t.r0, t.c0, t.rl, t.cl).noalias() =
                m_A.middleRows(t.r0, t.rl) * R.middleCols(t.c0, t.cl);
        });
    }

private:
    Matrix m_A;
};

// meas = identity on vec(X).
class IdentityMeasurement {
public:
    explicit IdentityMeasurement(Index size) : m_size(size) {}
    Index count() const { return m_size; }
    double scale() const { return 1.0; }
    void apply(const Matrix& B, Matrix& out) const { out = B; }
    void adjoint(const Matrix& R, Matrix& out) const { out = R; }

private:
    Index m_size;
};

}  // namespace detail

template <class Measurement>
class LowRankProblem : public SharedProblem {
public:
    using RowMap = Eigen::Map<const RowMatrix>;
    using MutRowMap = Eigen::Map<RowMatrix>;

    // What every product at one point shares: the point and S = grad_X L.
    struct State {
        Vector x;
        RowMatrix S;
        double loss = 0.0;
    };

    LowRankProblem(Measurement meas, Vector y, Index d1, Index d2, Index rank)
        : m_meas(std::move(meas)), m_y(std::move(y)), m_d1(d1), m_d2(d2), m_r(rank)
    {
        require(d1 >= 1 && d2 >= 1, "the matrices must not be empty");
        require(rank >= 1, "rank must be >= 1, got " + std::to_string(rank));
        require(m_y.size() == m_meas.count(), "y has length " + std::to_string(m_y.size()) + ", expected " +
                                                  std::to_string(m_meas.count()));
        require(m_y.allFinite(), "the targets contain NaN or inf");
    }

    Index dim() const override { return (m_d1 + m_d2) * m_r; }
    Index rows() const { return m_d1; }
    Index cols() const { return m_d2; }
    Index rank() const { return m_r; }
    const Vector& targets() const { return m_y; }
    const Measurement& measurement() const { return m_meas; }

    double loss(ConstVecRef x) const override { return state(x).loss; }

    double loss_and_grad(ConstVecRef x, VecRef g) const override
    {
        const State st = state(x);
        Vector out(dim());
        const RowMap U = factor_u(st.x.data()), V = factor_v(st.x.data());
        MutRowMap gU(out.data(), m_d1, m_r), gV(out.data() + m_d1 * m_r, m_d2, m_r);
        rows_of(m_d1,
                [&](Index r0, Index rl) { gU.middleRows(r0, rl).noalias() = st.S.middleRows(r0, rl) * V; });
        rows_of(m_d2, [&](Index r0, Index rl) {
            gV.middleRows(r0, rl).noalias() = st.S.middleCols(r0, rl).transpose() * U;
        });
        g = out;
        return st.loss;
    }

    void hvp(ConstVecRef x, ConstMatRef V, MatRef HV) const override { hvp_at(state(x), V, HV); }

    void hvp_at(const State& st, ConstMatRef Vin, MatRef HV) const
    {
        require(Vin.rows() == dim(),
                "V has " + std::to_string(Vin.rows()) + " rows, expected dim = " + std::to_string(dim()));
        const Index k = Vin.cols();
        const Matrix Dir = Vin;
        const RowMap U = factor_u(st.x.data()), V = factor_v(st.x.data());
        // dX_j = dU_j V^T + U dV_j^T, one column of B per direction
        Matrix B(m_d1 * m_d2, k), R, dS;
        for (Index j = 0; j < k; ++j) {
            MutRowMap dX(B.col(j).data(), m_d1, m_d2);
            const RowMap dU = factor_u(Dir.col(j).data()), dV = factor_v(Dir.col(j).data());
            rows_of(m_d1, [&](Index r0, Index rl) {
                dX.middleRows(r0, rl).noalias() = dU.middleRows(r0, rl) * V.transpose();
                dX.middleRows(r0, rl).noalias() += U.middleRows(r0, rl) * dV.transpose();
            });
        }
        m_meas.apply(B, R);
        m_meas.adjoint(R, dS);
        dS *= m_meas.scale();
        Matrix out(dim(), k);
        for (Index j = 0; j < k; ++j) {
            check_interrupt();
            const RowMap dSj(dS.col(j).data(), m_d1, m_d2);
            const RowMap dU = factor_u(Dir.col(j).data()), dV = factor_v(Dir.col(j).data());
            MutRowMap oU(out.col(j).data(), m_d1, m_r), oV(out.col(j).data() + m_d1 * m_r, m_d2, m_r);
            rows_of(m_d1, [&](Index r0, Index rl) {
                oU.middleRows(r0, rl).noalias() = dSj.middleRows(r0, rl) * V;
                oU.middleRows(r0, rl).noalias() += st.S.middleRows(r0, rl) * dV;
            });
            rows_of(m_d2, [&](Index r0, Index rl) {
                oV.middleRows(r0, rl).noalias() = dSj.middleCols(r0, rl).transpose() * U;
                oV.middleRows(r0, rl).noalias() += st.S.middleCols(r0, rl).transpose() * dU;
            });
        }
        HV = out;
    }

    void third(ConstVecRef x, ConstVecRef u, VecRef out_ref) const override
    {
        const State st = state(x);
        check_dim(u, "u");
        const Vector uw = u;
        const RowMap U = factor_u(st.x.data()), V = factor_v(st.x.data());
        const RowMap P = factor_u(uw.data()), Q = factor_v(uw.data());
        Matrix B(m_d1 * m_d2, 2), R, EF;
        MutRowMap B0(B.col(0).data(), m_d1, m_d2), B1(B.col(1).data(), m_d1, m_d2);
        rows_of(m_d1, [&](Index r0, Index rl) {
            B0.middleRows(r0, rl).noalias() = P.middleRows(r0, rl) * V.transpose();
            B0.middleRows(r0, rl).noalias() += U.middleRows(r0, rl) * Q.transpose();
            B1.middleRows(r0, rl).noalias() = P.middleRows(r0, rl) * Q.transpose();
        });
        m_meas.apply(B, R);
        m_meas.adjoint(R, EF);
        EF *= 2.0 * m_meas.scale();
        const RowMap E(EF.col(0).data(), m_d1, m_d2), F(EF.col(1).data(), m_d1, m_d2);
        Vector out(dim());
        MutRowMap oU(out.data(), m_d1, m_r), oV(out.data() + m_d1 * m_r, m_d2, m_r);
        rows_of(m_d1, [&](Index r0, Index rl) {
            oU.middleRows(r0, rl).noalias() = E.middleRows(r0, rl) * Q;
            oU.middleRows(r0, rl).noalias() += F.middleRows(r0, rl) * V;
        });
        rows_of(m_d2, [&](Index r0, Index rl) {
            oV.middleRows(r0, rl).noalias() = E.middleCols(r0, rl).transpose() * P;
            oV.middleRows(r0, rl).noalias() += F.middleCols(r0, rl).transpose() * U;
        });
        out_ref = out;
    }

    // The shared quantities at x (what the Hessian operator caches).
    State state(ConstVecRef x) const
    {
        check_dim(x);
        State st;
        st.x = x;
        const RowMap U = factor_u(st.x.data()), V = factor_v(st.x.data());
        Matrix B(m_d1 * m_d2, 1), R, S;
        MutRowMap X(B.data(), m_d1, m_d2);
        rows_of(m_d1, [&](Index r0, Index rl) {
            X.middleRows(r0, rl).noalias() = U.middleRows(r0, rl) * V.transpose();
        });
        m_meas.apply(B, R);
        R.col(0) -= m_y;
        st.loss = 0.5 * m_meas.scale() * squared_norm(R.col(0));
        m_meas.adjoint(R, S);
        st.S = RowMap(S.data(), m_d1, m_d2) * m_meas.scale();
        return st;
    }

    std::shared_ptr<LinearOperator> hessian(ConstVecRef x) const override;

private:
    RowMap factor_u(const double* p) const { return RowMap(p, m_d1, m_r); }
    RowMap factor_v(const double* p) const { return RowMap(p + m_d1 * m_r, m_d2, m_r); }

    // body(r0, rl) over fixed row tiles of [0, rows) of a d1 x d2 x r product.
    template <class Body>
    void rows_of(Index rows, Body&& body) const
    {
        detail::run_tiles(detail::Tiling(rows, 1, 1, 2 * m_d1 * m_d2 * m_r / rows),
                          [&](const detail::Tile& t) { body(t.r0, t.rl); });
    }

    Measurement m_meas;
    Vector m_y;
    Index m_d1, m_d2, m_r;
};

// The Hessian at x with S = grad_X L cached (saves one pass over the measurements per product).
template <class Measurement>
class LowRankHessian : public HessianOperator {
public:
    using Owner = LowRankProblem<Measurement>;
    LowRankHessian(std::shared_ptr<const Owner> p, ConstVecRef x)
        : HessianOperator(p, x), m_problem(std::move(p)), m_state(m_problem->state(x))
    {
    }
    void apply(ConstMatRef V, MatRef out) const override { m_problem->hvp_at(m_state, V, out); }

private:
    std::shared_ptr<const Owner> m_problem;
    typename Owner::State m_state;
};

template <class Measurement>
std::shared_ptr<LinearOperator> LowRankProblem<Measurement>::hessian(ConstVecRef x) const
{
    check_dim(x);
    return std::make_shared<LowRankHessian<Measurement>>(
        std::static_pointer_cast<const LowRankProblem<Measurement>>(shared_from_this()), x);
}

class MatrixSensing : public LowRankProblem<detail::SensingMeasurement> {
public:
    // A (m, d1 d2): row i is A_i (d1, d2) in row-major order; copied once, transposed.
    MatrixSensing(Eigen::Ref<const RowMatrix> A, Vector y, Index d1, Index d2, Index rank)
        : LowRankProblem(detail::SensingMeasurement(checked(A, d1, d2).transpose()), std::move(y), d1, d2,
                         rank)
    {
    }
    std::string name() const override { return "MatrixSensing"; }
    Index measurements() const { return measurement().count(); }

private:
    static Eigen::Ref<const RowMatrix> checked(Eigen::Ref<const RowMatrix> A, Index d1, Index d2)
    {
        require(A.rows() >= 1, "A must hold at least one measurement matrix");
        require(A.cols() == d1 * d2, "A's matrices have " + std::to_string(A.cols()) + " entries, expected " +
                                         std::to_string(d1 * d2));
        require(A.allFinite(), "A contains NaN or inf");
        return A;
    }
};

class MatrixFactorization : public LowRankProblem<detail::IdentityMeasurement> {
public:
    // M (d1, d2).
    MatrixFactorization(Eigen::Ref<const RowMatrix> M, Index rank)
        : LowRankProblem(detail::IdentityMeasurement(M.size()), flatten(M), M.rows(), M.cols(), rank)
    {
    }
    std::string name() const override { return "MatrixFactorization"; }
    RowMatrix target() const { return RowMap(targets().data(), rows(), cols()); }

private:
    static Vector flatten(Eigen::Ref<const RowMatrix> M)
    {
        require(M.size() >= 1, "M must not be empty");
        Vector v(M.size());
        for (Index i = 0; i < M.rows(); ++i) v.segment(i * M.cols(), M.cols()) = M.row(i).transpose();
        return v;
    }
};

}  // namespace eosfast
