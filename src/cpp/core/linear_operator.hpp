// The operator concept: a symmetric linear map R^rows -> R^rows. Solvers are
// templates over any type with rows() and perform_op(in, out); LinearOperator
// is the run-time polymorphic member of that concept that the bindings hand
// to them (a problem's Hessian at a point, a dense matrix, a Python callable).
#pragma once

#include "dense_product.hpp"
#include "types.hpp"

namespace eosfast {

class LinearOperator {
public:
    virtual ~LinearOperator() = default;
    virtual Index rows() const = 0;
    // out = A V for a block V of shape (rows, m).
    virtual void apply(ConstMatRef V, MatRef out) const = 0;
    // False when apply may only run on the owning thread (Python callables).
    virtual bool thread_safe() const { return true; }

    // The single-vector form the solver templates use.
    void perform_op(const double* in, double* out) const
    {
        Eigen::Map<const Matrix> v(in, rows(), 1);
        Eigen::Map<Matrix> w(out, rows(), 1);
        apply(v, w);
    }
};

// A dense symmetric matrix (rows x rows). Products run over fixed row chunks.
class DenseOperator : public LinearOperator {
public:
    explicit DenseOperator(Matrix A) : m_A(std::move(A)) {}
    Index rows() const override { return m_A.rows(); }
    void apply(ConstMatRef V, MatRef out) const override { dense_product(m_A, V, out); }
    const Matrix& matrix() const { return m_A; }

private:
    Matrix m_A;
};

}  // namespace eosfast
