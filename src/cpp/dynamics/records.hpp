// Preallocated row buffers the runner writes its records into. The host
// drains them between calls to Runner::advance (into numpy arrays or files),
// so memory stays bounded however long the run.
#pragma once

#include <algorithm>
#include <vector>

#include "../core/types.hpp"

namespace eosfast {

// Columns of the per-step records (every record_every steps, and at the last step).
struct ScalarColumns {
    enum : Index { step, loss, grad_norm, step_norm, lr, effective_lr, objective, count };
};

// Columns of the sharpness records, followed by k eigenvalues, k step overlaps
// and k gradient overlaps (NaN-padded when fewer are tracked).
struct SharpnessColumns {
    enum : Index {
        step,
        threshold,
        ratio,  // lambda_1 / threshold: >= 1 at or beyond the edge of stability
        hvps,
        inv_stableness_sum,
        sqrt_loss_sum,
        sqrt_loss_reference,
        count
    };
};

// What each column means: the one declaration the Python trajectory, the run-folder
// HDF5 schema (its dataset attributes) and the docs are built from.
struct ColumnInfo {
    const char* name;
    const char* description;
    const char* units;
};

inline constexpr ColumnInfo kScalarColumnInfo[ScalarColumns::count] = {
    {"step", "step t of each record (every record_every steps and the last)", "steps"},
    {"loss", "L(x_t), the training loss", "loss"},
    {"grad_norm", "|grad L(x_t)|, Euclidean norm", "loss per parameter unit"},
    {"step_norm", "|x_{t+1} - x_t| (NaN at the last step)", "parameter units"},
    {"lr", "the scheduled learning rate lr_t", "optimizer's own"},
    {"effective_lr", "the lr of the equivalent GD step on L", "parameter units^2 per loss"},
    {"objective", "what the optimizer descends: L, sqrt(L - loss_min), ...", "objective"},
};

inline constexpr ColumnInfo kSharpnessColumnInfo[SharpnessColumns::count] = {
    {"step", "steps of the sharpness measurements", "steps"},
    {"threshold", "the optimizer's stability threshold on lambda_1 (2/lr for GD)",
     "loss per parameter unit^2"},
    {"ratio", "eigenvalues[:, 0] / threshold (>= 1: at or past the edge)", "1"},
    {"hvps", "Hessian-vector products spent per measurement", "HVPs"},
    {"inv_stableness_sum", "NGD: 1/S_t + 1/S_{t+1}, S = lr_eff lambda_1", "1"},
    {"sqrt_loss_sum", "sqrt(L_t - L_min) + sqrt(L_{t+1} - L_min)", "sqrt(loss)"},
    {"sqrt_loss_reference",
     "Phase-II value of sqrt_loss_sum: lr sqrt(lambda_1/2) (NGD), lr lambda_1/2 (sqrt-GD)", "sqrt(loss)"},
};

// The blocks of k columns that follow SharpnessColumns, in this order.
inline constexpr ColumnInfo kSharpnessBlockInfo[] = {
    {"eigenvalues", "top-k eigenvalues of grad^2 L(x_t), descending", "loss per parameter unit^2"},
    {"step_overlap", "cosines of x_{t+1} - x_t with the eigenvectors", "1"},
    {"grad_overlap", "cosines of grad L(x_t) with the eigenvectors", "1"},
};
inline constexpr Index kSharpnessBlocks = sizeof(kSharpnessBlockInfo) / sizeof(kSharpnessBlockInfo[0]);

// The record kinds a host drains from the runner: one buffer each.
inline constexpr const char* kRecordKinds[] = {"scalars", "sharpness", "iterates"};

// Rows per record buffer between two drains by the host (memory stays bounded).
inline constexpr Index kRecordBufferRows = 4096;

class RecordBuffer {
public:
    RecordBuffer(Index cols, Index capacity)
        : m_cols(cols),
          m_capacity(std::max<Index>(capacity, 4)),
          m_data(static_cast<size_t>(m_cols * m_capacity))
    {
    }
    Index cols() const { return m_cols; }
    Index rows() const { return m_rows; }
    Index free() const { return m_capacity - m_rows; }
    // The next row (uninitialised); the caller checked free() > 0.
    double* push() { return m_data.data() + (m_rows++) * m_cols; }
    const double* data() const { return m_data.data(); }
    void clear() { m_rows = 0; }

private:
    Index m_cols, m_capacity, m_rows = 0;
    std::vector<double> m_data;  // row-major
};

}  // namespace eosfast
