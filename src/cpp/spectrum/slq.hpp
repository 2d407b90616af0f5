// Stochastic Lanczos quadrature (Golub & Meurant 2010, ch. 7; Ubaru, Chen &
// Saad 2017; Ghorbani, Krishnan & Xiao 2019 for Hessian densities).
//
// For a probe z, m Lanczos steps from v_1 = z / ||z|| give T_m = Q diag(theta) Q^T
// and the Gauss quadrature z^T f(H) z / ||z||^2 ~ sum_i tau_i f(theta_i),
// tau_i = Q_{1i}^2 (nodes theta_i, weights tau_i summing to 1). Averaged over
// probes with E[z z^T] = I, (n / N) sum_probes sum_i tau_i f(theta_i)
// estimates tr f(H); sum_i tau_i delta(t - theta_i) estimates the spectral
// density. The Lanczos vectors are fully reorthogonalised (twice), so no
// spurious copies of converged Ritz values appear (Ghorbani et al. sec. 3);
// the small tridiagonal eigensolve is in float64. A breakdown (an invariant
// Krylov subspace) ends a probe early: its quadrature is then exact.
#pragma once

#include <Eigen/Eigenvalues>
#include <limits>

#include "../core/block_ops.hpp"
#include "../core/interrupt.hpp"
#include "operator_adapter.hpp"

namespace eosfast {

struct QuadratureNodes {
    Matrix nodes;                                    // (steps, probes); unused entries 0
    Matrix weights;                                  // (steps, probes); unused entries 0
    Eigen::Matrix<Index, Eigen::Dynamic, 1> counts;  // nodes per probe
    Index matvecs = 0;
};

template <class Op>
QuadratureNodes slq_nodes(const Op& op, ConstMatRef Z, Index steps)
{
    const Index n = op.rows();
    require(Z.rows() == n, "probes must have dim rows");
    require(steps >= 1, "lanczos_steps must be at least 1");
    steps = std::min(steps, n);
    CountingOperator<Op> H(op, std::numeric_limits<Index>::max());
    if (!operator_thread_safe(op)) probe_symmetry(H, 0);
    QuadratureNodes out;
    out.nodes = Matrix::Zero(steps, Z.cols());
    out.weights = Matrix::Zero(steps, Z.cols());
    out.counts.resize(Z.cols());
    Matrix V(n, steps);
    Vector w(n), alpha(steps), beta(steps);
    for (Index l = 0; l < Z.cols(); ++l) {
        const double size = norm(Z.col(l));
        require(size > 0, "a probe vector is zero");
        V.col(0) = Z.col(l) / size;
        Index m = 0;
        while (true) {
            H.apply(V.col(m), w);
            Vector coeffs = Vector::Zero(m + 1);
            const Norms norms = orthogonalize(V.leftCols(m + 1), w, &coeffs);
            alpha[m] = coeffs[m];
            ++m;
            if (m == steps) break;
            beta[m - 1] = norms.after;
            if (!(beta[m - 1] > 1e-12 * norms.before)) break;  // invariant subspace: exact quadrature
            V.col(m) = w / beta[m - 1];
        }
        Eigen::SelfAdjointEigenSolver<Matrix> eig;
        eig.computeFromTridiagonal(alpha.head(m), beta.head(m - 1), Eigen::ComputeEigenvectors);
        if (eig.info() != Eigen::Success) throw NumericalError("tridiagonal eigensolve failed");
        out.nodes.col(l).head(m) = eig.eigenvalues();
        out.weights.col(l).head(m) = eig.eigenvectors().row(0).transpose().array().square();
        out.counts[l] = m;
        check_interrupt();
    }
    out.matvecs = H.matvecs();
    return out;
}

}  // namespace eosfast
