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
