// The result of every eigensolver: a status, never an exception, for
// non-convergence.
#pragma once

#include <vector>

#include "../core/types.hpp"

namespace eosfast {

struct EigenResult {
    Vector eigenvalues;           // (k), ordered by the `which` rule, most wanted first
    Matrix eigenvectors;          // (dim, k), orthonormal columns
    Vector residuals;             // (k), ||H v - lambda v|| of each returned pair
    std::vector<char> converged;  // (k), residual <= tol * scale
    Index matvecs = 0;            // operator applications (one per vector of a block)
    Index restarts = 0;           // thick restarts (summed over all Lanczos runs)
};

}  // namespace eosfast
