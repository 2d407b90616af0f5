// L(x) = 1/2 x^T A x - b^T x with A dense symmetric or diagonal.
// grad L = A x - b, grad^2 L = A, grad^3 L = 0.
#pragma once

#include "../core/dense_product.hpp"
#include "../core/vector_ops.hpp"
#include "problem.hpp"

namespace eosfast {

class Quadratic : public SharedProblem {
public:
    // A is (dim, dim) symmetric, or (dim, 1) holding the diagonal.
    Quadratic(Matrix A, Vector b, bool diagonal) : m_A(std::move(A)), m_b(std::move(b)), m_diagonal(diagonal)
    {
        require(m_A.rows() > 0, "A must not be empty");
        require(m_diagonal ? m_A.cols() == 1 : m_A.cols() == m_A.rows(), "A must be square or a diagonal");
        require(m_b.size() == m_A.rows(),
                "b has length " + std::to_string(m_b.size()) + ", expected " + std::to_string(m_A.rows()));
        require(m_A.allFinite() && m_b.allFinite(), "A and b must be finite");
        if (!m_diagonal) {
            // Round-off asymmetry (e.g. from B @ C @ B.T) is tolerated and removed.
            const double asymmetry = (m_A - m_A.transpose()).cwiseAbs().maxCoeff();
            require(asymmetry <= 1e-10 * m_A.cwiseAbs().maxCoeff(),
                    "A must be symmetric (max |A - A^T| = " + std::to_string(asymmetry) + ")");
            m_A = (0.5 * (m_A + m_A.transpose())).eval();
        }
    }

    Index dim() const override { return m_A.rows(); }
    std::string name() const override { return m_diagonal ? "Quadratic(diagonal)" : "Quadratic"; }
    bool diagonal() const { return m_diagonal; }
    const Matrix& A() const { return m_A; }
    const Vector& b() const { return m_b; }

    double loss(ConstVecRef x) const override
    {
        Vector g(dim());
        return loss_and_grad(x, g);
    }

    double loss_and_grad(ConstVecRef x, VecRef g) const override
    {
        check_dim(x);
        apply_A(x, g);  // g = A x first (no temporary: this runs once per GD step)
        const double value = 0.5 * dot(x, g) - dot(m_b, x);
        g -= m_b;
        return value;
    }

    void hvp(ConstVecRef x, ConstMatRef V, MatRef HV) const override
    {
        check_dim(x);
        apply_A(V, HV);
    }

    void third(ConstVecRef x, ConstVecRef u, VecRef out) const override
    {
        check_dim(x);
        check_dim(u, "u");
        out.setZero();
    }

private:
    void apply_A(ConstMatRef V, MatRef out) const
    {
        if (m_diagonal)
            out = m_A.col(0).asDiagonal() * V;
        else
            dense_product(m_A, V, out);
    }

    Matrix m_A;
    Vector m_b;
    bool m_diagonal;
};

}  // namespace eosfast
