// Rayleigh-Ritz on a small orthonormal block Y with known products HY, and
// the bookkeeping shared by the solvers that return an EigenResult.
#pragma once

#include <Eigen/Eigenvalues>
#include <vector>

#include "../core/block_ops.hpp"
#include "eigen_result.hpp"
#include "which.hpp"

namespace eosfast {

// Rotates (Y, HY) to the Ritz basis of span(Y): G = Y^T H Y = Q diag(lambda) Q^T,
// Y <- Y Q, HY <- HY Q. Returns lambda (ascending).
inline Vector rayleigh_ritz_block(Matrix& Y, Matrix& HY)
{
    const Index k = Y.cols();
    Matrix G(k, k);
    gram(Y, HY, G);
    const Matrix sym = 0.5 * (G + G.transpose());
    Eigen::SelfAdjointEigenSolver<Matrix> eig(sym);
    if (eig.info() != Eigen::Success) throw NumericalError("Rayleigh-Ritz eigensolve failed");
    Matrix rotated(Y.rows(), k);
    combine(Y, eig.eigenvectors(), rotated);
    Y.swap(rotated);
    combine(HY, eig.eigenvectors(), rotated);
    HY.swap(rotated);
    return eig.eigenvalues();
}

// Fills `result` with the pairs (values, Y) ordered for `which`, their true
// residuals ||HY - Y diag(values)|| and convergence flags.
inline void store_pairs(EigenResult& result, const Vector& values, const Matrix& Y, const Matrix& HY,
                        Which which, double threshold)
{
    const auto order = result_order(values, which);
    const Index k = static_cast<Index>(order.size());
    result.eigenvalues.resize(k);
    result.eigenvectors.resize(Y.rows(), k);
    result.residuals.resize(k);
    result.converged.assign(static_cast<size_t>(k), 0);
    for (Index j = 0; j < k; ++j) {
        const Index i = order[static_cast<size_t>(j)];
        result.eigenvalues[j] = values[i];
        result.eigenvectors.col(j) = Y.col(i);
        Vector r = HY.col(i) - values[i] * Y.col(i);
        result.residuals[j] = norm(r);
        result.converged[static_cast<size_t>(j)] = result.residuals[j] <= threshold;
    }
}

}  // namespace eosfast
