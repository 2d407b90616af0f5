// Common type aliases of the eosfast core. Column-major storage throughout:
// a block of m vectors of length dim is a (dim, m) matrix, one vector per column.
#pragma once

#include <Eigen/Core>

namespace eosfast {

using Index = Eigen::Index;
using Vector = Eigen::VectorXd;
using Matrix = Eigen::MatrixXd;
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

using VecRef = Eigen::Ref<Vector>;
using ConstVecRef = Eigen::Ref<const Vector>;
using MatRef = Eigen::Ref<Matrix>;
using ConstMatRef = Eigen::Ref<const Matrix>;

}  // namespace eosfast
