// The solvers' internal view of an operator (the concept: rows() and
// perform_op(in, out); optionally apply(block, out) and thread_safe()). It
// applies blocks, counts products against a budget, rejects NaN/inf results,
// and probes operators it cannot trust (Python callables) for symmetry.
#pragma once

#include <cmath>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/errors.hpp"
#include "../core/random.hpp"
#include "../core/vector_ops.hpp"

namespace eosfast {

namespace detail {
template <class Op, class = void>
struct has_block_apply : std::false_type {};
template <class Op>
struct has_block_apply<Op, std::void_t<decltype(std::declval<const Op&>().apply(
                               std::declval<ConstMatRef>(), std::declval<MatRef>()))>> : std::true_type {};

template <class Op, class = void>
struct has_thread_safe : std::false_type {};
template <class Op>
struct has_thread_safe<Op, std::void_t<decltype(std::declval<const Op&>().thread_safe())>> : std::true_type {
};
}  // namespace detail

template <class Op>
bool operator_thread_safe(const Op& op)
{
    if constexpr (detail::has_thread_safe<Op>::value)
        return op.thread_safe();
    else
        return true;
}

template <class Op>
class CountingOperator {
public:
    CountingOperator(const Op& op, Index budget) : m_op(op), m_budget(budget) {}

    Index rows() const { return m_op.rows(); }
    Index matvecs() const { return m_matvecs; }
    bool affords(Index m) const { return m_matvecs + m <= m_budget; }

    // out = H X, one product per column of X. Always on the calling thread.
    void apply(ConstMatRef X, MatRef out)
    {
        if constexpr (detail::has_block_apply<Op>::value) {
            m_op.apply(X, out);
        } else {
            for (Index j = 0; j < X.cols(); ++j) m_op.perform_op(X.col(j).data(), out.col(j).data());
        }
        m_matvecs += X.cols();
        if (!out.allFinite())
            throw NumericalError("the operator returned NaN or inf (in matrix-vector product " +
                                 std::to_string(m_matvecs) + ")");
    }

private:
    const Op& m_op;
    Index m_budget;
    Index m_matvecs = 0;
};

// The operator times a power of two s, chosen on the first nonzero product to
// bring its entries near 1 when they lie far outside [2^-200, 2^200]: sums of
// squares of vectors scaled like ||H|| ~ 1e-160 underflow to zero (and near
// 1e160 overflow), which would make norms, residual tests and breakdown tests
// meaningless. This is LAPACK's remedy (dsyev scales the matrix into
// [sqrt(smlnum), sqrt(bignum)] before the tridiagonal reduction); a power of
// two makes the scaling exact, so a run on s H is the run on H with every
// number multiplied by s, and operators of ordinary size are not touched.
template <class Op>
class ScaledOperator {
public:
    explicit ScaledOperator(const Op& op) : m_op(op) {}

    Index rows() const { return m_op.rows(); }
    bool thread_safe() const { return operator_thread_safe(m_op); }
    double scale() const { return m_scale; }

    void apply(ConstMatRef X, MatRef out) const
    {
        if constexpr (detail::has_block_apply<Op>::value) {
            m_op.apply(X, out);
        } else {
            for (Index j = 0; j < X.cols(); ++j) m_op.perform_op(X.col(j).data(), out.col(j).data());
        }
        if (!m_fixed) {
            const double size = out.size() > 0 ? out.cwiseAbs().maxCoeff() : 0.0;
            if (!(size > 0) || !std::isfinite(size)) return;  // decided by a later product
            m_fixed = true;
            constexpr double low = 0x1p-200, high = 0x1p200;
            if (size < low || size > high) {
                int exponent = 0;
                std::frexp(size, &exponent);
                m_scale = std::ldexp(1.0, -exponent);
            }
        }
        if (m_scale != 1.0) out *= m_scale;
    }

private:
    const Op& m_op;
    mutable bool m_fixed = false;
    mutable double m_scale = 1.0;
};

// Relative asymmetry |u.Hv - v.Hu| / (|u||Hv| + |v||Hu|) on two random
// vectors. Two products, counted. Throws std::invalid_argument above rtol.
template <class Op>
void probe_symmetry(CountingOperator<Op>& op, std::uint64_t seed, double rtol = 1e-6)
{
    SplitMix64 rng(seed ^ 0x5EED5EED5EED5EEDULL);
    const Index n = op.rows();
    Matrix X(n, 2), HX(n, 2);
    rng.fill_uniform(X.col(0));
    rng.fill_uniform(X.col(1));
    op.apply(X, HX);
    const double a = dot(X.col(0), HX.col(1)), b = dot(X.col(1), HX.col(0));
    const double size = norm(X.col(0)) * norm(HX.col(1)) + norm(X.col(1)) * norm(HX.col(0));
    const double asymmetry = size > 0 ? std::abs(a - b) / size : 0.0;
    require(asymmetry <= rtol, "the operator is not symmetric: |u.Hv - v.Hu| / (|u||Hv| + |v||Hu|) = " +
                                   std::to_string(asymmetry) + " on random u, v (tolerance " +
                                   std::to_string(rtol) + ")");
}

}  // namespace eosfast
