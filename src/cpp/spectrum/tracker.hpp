// SharpnessTracker: the top eigenpairs of a slowly changing Hessian along a
// trajectory, warm-started from the previous eigenvectors.
//
// The first measurement is a cold eigsh (with its check for missed copies).
// Later ones start a Lanczos run from the sum of the previous eigenvectors
// (see solve for copies of an eigenvalue): when H moves little, the previous
// vectors are already close and a few products reach the tolerance.
// Each eigenvector's sign is aligned with the previous one it overlaps most.
// From the third measurement on, each start vector is extrapolated from the
// last two measurements, normalize(2 v_t - v_{t-1}): along a smooth path
// v(s) its angle to v_{t+1} is O(h^2) instead of O(h) for v_t (a linear
// predictor, as in continuation methods; Allgower & Georg 1990, ch. 2).
// A vector that moved by more than kExtrapolateBelow in cosine keeps v_t.
// With grow_above set, k grows until the smallest eigenvalue found is below
// the threshold (so every eigenvalue above it is covered), up to max_k, and
// shrinks back to max(k, count above + 1) for the next measurement.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "../core/linear_operator.hpp"
#include "eigsh.hpp"

namespace eosfast {

struct TrackerOptions {
    Index k = 1;
    double tol = 1e-6;
    double value_tol = 0.0;  // > 0: also stop on the eigenvalue error bound (see lanczos.hpp)
    double grow_above = std::numeric_limits<double>::quiet_NaN();  // NaN = off
    Index max_k = 64;
    Index max_matvecs = 0;  // per measurement; 0 = automatic
    std::uint64_t seed = 0;
};

// Everything a measurement depends on besides the operator and the options.
struct TrackerState {
    Matrix vectors;               // (dim, k_prev) previous eigenvectors (empty before the first)
    Vector values;                // (k_prev)
    Matrix older;                 // (dim, k_older) the eigenvectors before those (empty if none)
    Index k = 1;                  // k of the next measurement
    std::uint64_t rng_state = 0;  // SplitMix64 state
    Index measurements = 0;
    TrackerOptions options;  // of the tracker that saved it (restore keeps its own)
};

class SharpnessTracker {
public:
    explicit SharpnessTracker(TrackerOptions options)
        : m_options(options), m_rng(options.seed), m_k(options.k)
    {
        require(options.k >= 1, "k must be at least 1");
        require(options.max_k >= options.k, "max_k must be at least k");
        require(options.tol > 0 && options.tol < 1, "tol must be in (0, 1)");
        require(options.value_tol >= 0 && options.value_tol < 1, "value_tol must be in [0, 1) (0 = off)");
        require(options.max_matvecs >= 0, "max_matvecs must be >= 0 (0 = automatic)");
        require(!std::isinf(options.grow_above), "grow_above must be finite or NaN (off)");
    }

    const EigenResult& measure(const LinearOperator& H)
    {
        const Index n = H.rows();
        require(n >= 1, "the operator must have at least one row");
        const bool warm = m_vectors.rows() == n && m_vectors.cols() > 0;
        const Matrix previous = warm ? m_vectors : Matrix(n, 0);
        const Index cap = std::min(m_options.max_k, n);
        Index k = std::min(m_k, cap);
        EigenResult result = solve(H, k, warm ? extrapolate(previous, m_older) : previous, m_values, warm);
        Index above = count_above(result);
        while (growing() && above == k && k < cap) {
            k = std::min(cap, 2 * k);
            EigenResult larger = solve(H, k, result.eigenvectors, result.eigenvalues, true);
            larger.matvecs += result.matvecs;
            larger.restarts += result.restarts;
            result = std::move(larger);
            above = count_above(result);
        }
        m_k = growing() ? std::min(cap, std::max(m_options.k, above + 1)) : m_options.k;
        if (warm) align_signs(result.eigenvectors, previous);
        m_older = previous;
        m_vectors = result.eigenvectors;
        m_values = result.eigenvalues;
        ++m_measurements;
        m_last = std::move(result);
        return m_last;
    }

    const EigenResult& last() const { return m_last; }
    const TrackerOptions& options() const { return m_options; }

    TrackerState state() const
    {
        return {m_vectors, m_values, m_older, m_k, m_rng.state(), m_measurements, m_options};
    }

    // After restore, last() holds the saved eigenpairs with residuals NaN,
    // converged 0 and no counts (they are not part of the state).
    void restore(const TrackerState& s)
    {
        require(s.vectors.cols() == s.values.size(), "state: vectors and values disagree in k");
        require(s.k >= 1 && s.k <= m_options.max_k, "state: k out of range for these options");
        require(s.measurements >= 0, "state: measurements must be >= 0");
        require(s.older.cols() == 0 || s.older.rows() == s.vectors.rows(),
                "state: older vectors and vectors disagree in dim");
        m_vectors = s.vectors;
        m_older = s.older;
        m_values = s.values;
        m_k = s.k;
        m_rng.set_state(s.rng_state);
        m_measurements = s.measurements;
        m_last = EigenResult();
        m_last.eigenvalues = s.values;
        m_last.eigenvectors = s.vectors;
        m_last.residuals = Vector::Constant(s.values.size(), std::numeric_limits<double>::quiet_NaN());
        m_last.converged.assign(static_cast<size_t>(s.values.size()), 0);
    }

private:
    bool growing() const { return !std::isnan(m_options.grow_above); }

    Index count_above(const EigenResult& r) const
    {
        return growing() ? (r.eigenvalues.array() > m_options.grow_above).count() : 0;
    }

    EigenResult solve(const LinearOperator& H, Index k, const Matrix& start, const Vector& known, bool warm)
    {
        const Index n = H.rows();
        EigshOptions opt;
        opt.k = k;
        opt.tol = m_options.tol;
        opt.max_matvecs = m_options.max_matvecs;
        if (!warm) {
            opt.seed = m_rng.next();
            return eigsh(H, opt, Matrix(n, 0));
        }
        // Warm: a single-vector Lanczos run from the sum of the previous
        // eigenvectors, a start that holds all of them. On an MLP Hessian at
        // the edge of stability, for k = 3, this takes about a third of the
        // products of a block Lanczos run from the previous block (a block
        // Krylov space grows by k vectors a step and converges more slowly per
        // product). A single-vector Krylov space holds one direction of each
        // eigenspace, so when two previous eigenvalues coincide within
        // kCopies * tol * |lambda| (copies, as after a cold eigsh found them)
        // it is eigsh from the same start, with its check for missed copies,
        // instead; copies appearing between two measurements of distinct
        // eigenvalues are not looked for.
        Matrix v0 = start.rowwise().sum();
        if (!(norm(v0.col(0)) > 0)) v0 = start.leftCols(1);
        if (k > 1 && has_copies(known)) {
            opt.seed = m_rng.next();
            return eigsh(H, opt, v0);
        }
        const Index block = 1;
        const Index ncv = detail::default_ncv(n, k, block, 0);
        CountingOperator<LinearOperator> op(H, detail::default_budget(ncv, opt.max_matvecs));
        const Matrix none(n, 0);
        KrylovBasis basis(n, ncv, block, none, m_rng);
        basis.start(v0);
        double scale = 0.0;
        LanczosRun run = lanczos_run(op, basis, k, Which::LA, opt.tol, scale, m_options.value_tol);
        EigenResult result;
        if (run.vectors.cols() > 0) {
            const Vector values = rayleigh_ritz_block(run.vectors, run.products);
            store_pairs(result, values, run.vectors, run.products, Which::LA, opt.tol * scale);
            // A pair the run accepted on its eigenvalue bound: the final
            // Rayleigh-Ritz only rotates among the run's Ritz vectors, so
            // match it by the nearest Ritz value.
            for (Index j = 0; j < result.eigenvalues.size(); ++j) {
                Index i;
                (run.values.array() - result.eigenvalues[j]).abs().minCoeff(&i);
                if (run.converged[static_cast<size_t>(i)]) result.converged[static_cast<size_t>(j)] = 1;
            }
        }
        result.matvecs = op.matvecs();
        result.restarts = run.restarts;
        return result;
    }

    static constexpr double kExtrapolateBelow = 0.9;
    // Each computed eigenvalue is within its residual, tol * scale, of an
    // eigenvalue (Parlett, thm. 4.5.1), so computed copies differ by at most
    // twice that; the margin covers scale estimates below max |lambda|.
    static constexpr double kCopies = 4.0;

    // Whether two of the known eigenvalues coincide within kCopies * tol * |lambda|.
    bool has_copies(const Vector& values) const
    {
        const Index m = values.size();
        if (m < 2) return false;
        const double width = kCopies * m_options.tol * values.cwiseAbs().maxCoeff();
        for (Index i = 0; i < m; ++i)
            for (Index j = i + 1; j < m; ++j)
                if (std::abs(values[i] - values[j]) <= width) return true;
        return false;
    }

    // The start block: column j of `previous` extrapolated with the column of
    // `older` it overlaps most (signs are aligned between measurements).
    static Matrix extrapolate(const Matrix& previous, const Matrix& older)
    {
        if (older.cols() == 0 || older.rows() != previous.rows()) return previous;
        Matrix overlap(previous.cols(), older.cols());
        gram(previous, older, overlap);
        Matrix start = previous;
        for (Index j = 0; j < previous.cols(); ++j) {
            Index i;
            const double c = overlap.row(j).maxCoeff(&i);
            if (c < kExtrapolateBelow) continue;
            auto x = start.col(j);
            x = 2.0 * previous.col(j) - older.col(i);
            x /= norm(x);
        }
        return start;
    }

    // Flips each new vector whose overlap with the previous vector it is
    // closest to is negative.
    static void align_signs(Matrix& vectors, const Matrix& previous)
    {
        if (previous.cols() == 0) return;
        Matrix overlap(vectors.cols(), previous.cols());
        gram(vectors, previous, overlap);
        for (Index i = 0; i < vectors.cols(); ++i) {
            Index j;
            overlap.row(i).cwiseAbs().maxCoeff(&j);
            if (overlap(i, j) < 0) vectors.col(i) = -vectors.col(i);
        }
    }

    TrackerOptions m_options;
    SplitMix64 m_rng;
    Index m_k;
    Matrix m_vectors;
    Vector m_values;
    Matrix m_older;
    Index m_measurements = 0;
    EigenResult m_last;
};

}  // namespace eosfast
