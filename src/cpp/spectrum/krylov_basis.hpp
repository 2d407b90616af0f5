// The state of a thick-restart block Lanczos process with full
// reorthogonalisation (Wu & Simon 2000; block form as in Zhou & Saad 2008).
//
// Processed vectors V = [v_0 .. v_{p-1}] (orthonormal), their products
// W = H V (kept, so residuals are true residuals ||H y - theta y|| and not the
// Lanczos estimate only), the projected matrix T = V^T H V (p x p, symmetric:
// arrow-plus-band after a thick restart, Wu & Simon eq. 2.4) and a pending
// block P (q vectors, orthonormal to V) with couplings B = P^T H V (q x p).
// In exact arithmetic H V = V T + P B, so the Ritz pair (theta, V s) has the
// residual P B s of norm ||B s|| (the estimate the solvers test first).
//
// Every vector is also kept orthogonal to a fixed deflation block Y (locked
// eigenvectors, or an earlier Krylov basis), i.e. the process runs on
// (I - Y Y^T) H (I - Y Y^T). Long-vector arithmetic goes through
// core/block_ops.hpp, so results do not depend on the thread count.
#pragma once

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>

#include "../core/block_ops.hpp"
#include "../core/random.hpp"

namespace eosfast {

class KrylovBasis {
public:
    // capacity: most processed vectors held; block: most pending vectors.
    KrylovBasis(Index n, Index capacity, Index block, ConstMatRef deflation, SplitMix64& rng)
        : m_n(n),
          m_capacity(capacity),
          m_block(block),
          m_Y(deflation),
          m_rng(rng),
          m_V(n, capacity + block),
          m_W(n, capacity),
          m_T(Matrix::Zero(capacity, capacity)),
          m_B(Matrix::Zero(block, capacity))
    {
    }

    Index dim() const { return m_n; }
    Index capacity() const { return m_capacity; }
    Index processed() const { return m_p; }
    Index pending() const { return m_q; }
    // Room to process the pending block.
    bool has_room() const { return m_p + m_q <= m_capacity; }

    // Clears the basis; the pending block becomes the columns of X made
    // orthonormal (to Y and each other), topped up with random vectors to the
    // block size. Columns in the span of earlier ones are dropped.
    void start(ConstMatRef X)
    {
        m_p = 0;
        m_q = 0;
        for (Index j = 0; j < X.cols() && m_q < m_block; ++j) {
            m_V.col(m_q) = X.col(j);
            if (accept_pending()) ++m_q;
        }
        while (m_q < m_block && add_random_pending()) ++m_q;
        m_B.setZero();
    }

    auto pending_vectors() const { return m_V.middleCols(m_p, m_q); }
    auto product_slot() { return m_W.middleCols(m_p, m_q); }

    // After the caller wrote H P into product_slot(): extends T by the new
    // columns V^T H P, and orthogonalises H P against Y, V and P (two classical
    // Gram-Schmidt passes) into the next pending block (its QR factor gives
    // the couplings B). A column whose remainder is negligible (an invariant
    // subspace: Lanczos breakdown) is replaced by a random vector with zero
    // coupling, which also lets later steps find further copies of a repeated
    // eigenvalue; when no direction is left the pending block shrinks.
    void absorb()
    {
        const Index p = m_p, q = m_q, pq = p + q;
        // The components of H P along V are known before any sweep over V:
        // V^T H P = B^T (the three-term recurrence, or the arrow after a thick
        // restart) and P^T H P (q x q). Removing them first leaves only
        // rounding-level components for the full reorthogonalisation, whose
        // second pass is then almost always skipped (see orthogonalize).
        Matrix local = Matrix::Zero(pq, q);
        local.topRows(p) = m_B.topLeftCorner(q, p).transpose();
        Matrix A(q, q);
        gram(m_V.middleCols(p, q), m_W.middleCols(p, q), A);
        local.bottomRows(q) = 0.5 * (A + A.transpose());
        Index lo = 0, hi = p;  // the columns of V with known nonzero components
        while (lo < p && local.row(lo).isZero(0)) ++lo;
        Matrix coupling = Matrix::Zero(m_block, pq);
        Index accepted = 0;
        for (Index i = 0; i < q; ++i) {
            auto r = m_V.col(pq + accepted);
            r = m_W.col(p + i);
            add_combination(m_V.middleCols(lo, hi + q - lo), -local.col(i).segment(lo, hi + q - lo), r);
            Vector coeffs = local.col(i);
            coeffs.conservativeResize(pq + accepted);
            coeffs.tail(accepted).setZero();
            Vector deflated = Vector::Zero(m_Y.cols());
            const double local_before = orthogonalize(m_Y, r, &deflated).before;
            const double beta = orthogonalize(m_V.leftCols(pq + accepted), r, &coeffs).after;
            const double before = std::sqrt(local.col(i).squaredNorm() + local_before * local_before);
            // Column p + i of T (rows 0 .. pq); T stays symmetric.
            for (Index j = 0; j < pq; ++j) {
                m_T(j, p + i) = coeffs[j];
                if (j < p) m_T(p + i, j) = coeffs[j];
            }
            for (Index l = 0; l < accepted; ++l) coupling(l, p + i) = coeffs[pq + l];
            if (beta > kBreakdown * before) {
                r /= beta;
                coupling(accepted, p + i) = beta;
                ++accepted;
            } else if (add_random_pending(pq + accepted)) {
                ++accepted;
            }
        }
        // The new q x q diagonal block of T, symmetrised.
        auto D = m_T.block(p, p, q, q);
        const Matrix sym = 0.5 * (D + D.transpose());
        D = sym;
        m_p = pq;
        m_q = accepted;
        m_B.setZero();
        m_B.topLeftCorner(accepted, pq) = coupling.topRows(accepted);
    }

    // Rayleigh-Ritz on the processed vectors: Ritz values ascending, their
    // coordinates S (p x p) and residual estimates ||B s||.
    void ritz(Vector& theta, Matrix& S, Vector& estimates) const
    {
        Eigen::SelfAdjointEigenSolver<Matrix> eig(m_T.topLeftCorner(m_p, m_p));
        if (eig.info() != Eigen::Success) throw NumericalError("Rayleigh-Ritz eigensolve failed");
        theta = eig.eigenvalues();
        S = eig.eigenvectors();
        const Matrix BS = m_B.topLeftCorner(m_q, m_p) * S;
        estimates = BS.colwise().norm().transpose();
        if (m_q == 0) estimates.setZero(m_p);
    }

    // Ritz vectors Y = V S and their products HY = W S (true, not estimated).
    void ritz_vectors(ConstMatRef S, MatRef Y, MatRef HY) const
    {
        combine(m_V.leftCols(m_p), S, Y);
        combine(m_W.leftCols(m_p), S, HY);
    }

    // Thick restart (Wu & Simon 2000, sec. 2): keep the Ritz vectors V S_keep
    // with T = diag(theta_keep) and couplings B S_keep to the pending block,
    // which carries over unchanged.
    void restart(ConstMatRef S_keep, ConstVecRef theta_keep)
    {
        const Index l = S_keep.cols();
        combine_in_place(m_V.leftCols(m_p), S_keep);
        combine_in_place(m_W.leftCols(m_p), S_keep);
        for (Index j = 0; j < m_q; ++j) m_V.col(l + j) = m_V.col(m_p + j);
        const Matrix BS = m_B.topLeftCorner(m_q, m_p) * S_keep;
        m_B.setZero();
        m_B.topLeftCorner(m_q, l) = BS;
        m_T.setZero();
        m_T.diagonal().head(l) = theta_keep;
        m_p = l;
    }

    // The processed and pending vectors (orthonormal): the Krylov space
    // built so far.
    auto span() const { return m_V.leftCols(m_p + m_q); }

    // Removes from r its components along the deflation block Y: a residual
    // of the deflated operator (I - Y Y^T) H (I - Y Y^T), the part this
    // process controls.
    void remove_deflated(VecRef r) const
    {
        if (m_Y.cols() > 0) orthogonalize(m_Y, r);
    }

private:
    // Relative size below which an orthogonalised vector counts as zero.
    static constexpr double kBreakdown = 1e-12;

    // Orthonormalises column `col` of V against Y and columns [0, col).
    // False if nothing independent is left.
    bool accept_pending(Index col = -1)
    {
        if (col < 0) col = m_p + m_q;
        auto r = m_V.col(col);
        const double before = orthogonalize(m_Y, r).before;
        const double after = orthogonalize(m_V.leftCols(col), r).after;
        if (!(before > 0) || after <= kBreakdown * before) return false;
        r /= after;
        return true;
    }

    bool add_random_pending(Index col = -1)
    {
        if (col < 0) col = m_p + m_q;
        if (col + m_Y.cols() >= m_n) return false;
        // A random vector keeps a norm of about sqrt((n - col - d) / n) after
        // projection; three tries make a false "exhausted" vanishingly rare.
        for (int attempt = 0; attempt < 3; ++attempt) {
            m_rng.fill_uniform(m_V.col(col));
            if (accept_pending(col)) return true;
        }
        return false;
    }

    Index m_n, m_capacity, m_block;
    ConstMatRef m_Y;
    SplitMix64& m_rng;
    Matrix m_V, m_W, m_T, m_B;
    Index m_p = 0, m_q = 0;
};

}  // namespace eosfast
