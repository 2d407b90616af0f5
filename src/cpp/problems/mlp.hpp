// A fully connected network f(x; theta) on data X (n, d) with a linear output
// layer, and its loss, gradient, Hessian-vector products and third-derivative
// products, all exact.
//
//   Z_l = W_l A_{l-1} + b_l,  A_l = sigma(Z_l) (hidden),  F = Z_{L-1},  A_{-1} = X^T
//   mse: L = 1/(2n) sum_i ||F_i - y_i||^2     ce: L = 1/n sum_i (logsumexp(F_i) - F_{i,y_i})
//
// The parameter layout is in mlp_layout.hpp, the loss heads in mlp_heads.hpp,
// the passes over one chunk in mlp_passes.hpp, the Hessian operator with its
// cache in mlp_hessian.hpp; this file holds the data and runs the passes
// chunk after chunk. Activations are stored feature-major: a chunk of c
// samples is an (width, c) matrix, one sample per column.
//
// Gradient: backpropagation, delta_l = dL/dZ_l, dW_l = delta_l A_{l-1}^T.
// HVP: Pearlmutter's R-operator (forward-over-reverse, Pearlmutter 1994), with
// R{.} the directional derivative along v = (V_l, c_l):
//   RZ_l = V_l A_{l-1} + W_l RA_{l-1} + c_l,  RA_l = sigma'(Z_l) RZ_l
//   R delta_{L-1} = l''(F) RF,  R delta_{l-1} = sigma''(Z) RZ G + sigma'(Z) (V_l^T delta_l + W_l^T R delta_l)
//   (H v)_{W_l} = R delta_l A_{l-1}^T + delta_l RA_{l-1}^T,  with G_{l-1} = W_l^T delta_l.
// Third: phi(theta) = u^T H u = d^2/ds^2 L(theta + s u) is computed by a
// second-order Taylor forward pass (Z, RZ = dZ/ds, QZ = d^2Z/ds^2) and
// grad phi by reverse mode through that pass (adjoints Zb, RZb, QZb):
//   RZ_l = U_l A + W_l RA + c_l,  QZ_l = 2 U_l RA + W_l QA,  QA = sigma'' RZ^2 + sigma' QZ
//   dphi/dW_l = Zb A^T + RZb RA^T + QZb QA^T
//   Ab = W^T Zb + U^T RZb,  RAb = W^T RZb + 2 U^T QZb,  QAb = W^T QZb
//   QZb = s' QAb,  RZb = s' RAb + 2 s'' RZ QAb,  Zb = s' Ab + s'' RZ RAb + (s''' RZ^2 + s'' QZ) QAb
//
// Samples are processed in chunks of kSampleChunk and weight derivatives are
// accumulated chunk after chunk, so results do not depend on the thread count
// and memory stays O(params + chunk x sum of widths).
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "../core/interrupt.hpp"
#include "../core/vector_ops.hpp"
#include "mlp_heads.hpp"
#include "mlp_layout.hpp"
#include "mlp_passes.hpp"
#include "problem.hpp"

namespace eosfast {

using ConstRowMatRef = Eigen::Ref<const RowMatrix>;

namespace detail {
// Samples per chunk (fixed: part of the numerical result).
inline constexpr Index kSampleChunk = 256;
// Directions of a block HVP processed together (bounds the memory of a block).
inline constexpr Index kDirectionGroup = 8;
}  // namespace detail

class MLP : public SharedProblem {
public:
    using State = detail::MLPChunkState;

    // Regression (loss = MSE): Y is (n, k). Classification (loss = CE): labels
    // in [0, num_classes). X is (n, d). The data are copied once, transposed.
    static std::shared_ptr<MLP> regression(ConstRowMatRef X, ConstRowMatRef Y,
                                           const std::vector<Index>& hidden, const std::string& activation,
                                           bool bias, double cache_bytes)
    {
        require(Y.rows() == X.rows(), "Y has " + std::to_string(Y.rows()) + " rows, expected " +
                                          std::to_string(X.rows()) + " (the number of rows of X)");
        require(Y.cols() >= 1, "Y must have at least one column");
        require(Y.allFinite(), "Y contains NaN or inf");
        return std::shared_ptr<MLP>(new MLP(X, Y.transpose(), LabelVector(), Y.cols(), hidden, activation,
                                            MLPLoss::MSE, bias, cache_bytes));
    }

    static std::shared_ptr<MLP> classification(ConstRowMatRef X, const LabelVector& labels, Index num_classes,
                                               const std::vector<Index>& hidden,
                                               const std::string& activation, bool bias, double cache_bytes)
    {
        require(labels.size() == X.rows(), "labels has length " + std::to_string(labels.size()) +
                                               ", expected " + std::to_string(X.rows()) +
                                               " (the number of rows of X)");
        require(num_classes >= 2, "num_classes must be >= 2, got " + std::to_string(num_classes));
        for (Index i = 0; i < labels.size(); ++i)
            require(labels[i] >= 0 && labels[i] < num_classes,
                    "labels must lie in [0, num_classes = " + std::to_string(num_classes) + "), got " +
                        std::to_string(labels[i]) + " at index " + std::to_string(i));
        return std::shared_ptr<MLP>(new MLP(X, Matrix(), labels, num_classes, hidden, activation,
                                            MLPLoss::CrossEntropy, bias, cache_bytes));
    }

    Index dim() const override { return m_layout.dim(); }
    std::string name() const override
    {
        std::string s = "MLP(" + std::to_string(input_dim());
        for (const MLPLayer& L : layers()) s += "-" + std::to_string(L.out);
        return s + ", " + activation_name(m_act) + ", " + mlp_loss_name(m_loss) + ")";
    }

    const std::vector<MLPLayer>& layers() const { return m_layout.layers(); }
    Activation activation() const { return m_act; }
    MLPLoss loss_kind() const { return m_loss; }
    bool has_bias() const { return m_bias; }
    Index n_samples() const { return m_Xt.cols(); }
    Index input_dim() const { return m_Xt.rows(); }
    Index output_dim() const { return m_k; }
    // The regression targets, (k, n) (empty for cross-entropy).
    const Matrix& targets() const { return m_Yt; }
    double cache_bytes() const { return m_cache_bytes; }
    Index chunk_count() const { return chunking().count(); }
    // Bytes of the Hessian cache per chunk of kSampleChunk samples.
    Index chunk_state_bytes() const
    {
        State s;
        allocate(s, 0, std::min(n_samples(), detail::kSampleChunk), 2);
        return s.bytes();
    }

    double loss(ConstVecRef x) const override
    {
        check_dim(x);
        const Vector xw = x;
        State st;
        double total = 0.0;
        for (Index c = 0; c < chunking().count(); ++c) {
            check_interrupt();
            allocate(st, chunking().begin(c), chunking().length(c), 0);
            passes().forward(xw.data(), data_chunk(st), st, 0);
            total += output(st, false);
        }
        return total / static_cast<double>(n_samples());
    }

    double loss_and_grad(ConstVecRef x, VecRef g) const override
    {
        check_dim(x);
        const Vector xw = x;
        Vector acc = Vector::Zero(dim());
        State st;
        double total = 0.0;
        for (Index c = 0; c < chunking().count(); ++c) {
            check_interrupt();
            allocate(st, chunking().begin(c), chunking().length(c), 1);
            passes().forward(xw.data(), data_chunk(st), st, 1);
            total += output(st, true);
            passes().backward(xw.data(), data_chunk(st), st, &acc, false);
        }
        g = acc;
        return total / static_cast<double>(n_samples());
    }

    void hvp(ConstVecRef x, ConstMatRef V, MatRef HV) const override { hvp_cached(x, V, HV, {}); }

    // H(x) V using the chunk states in `cache` for its first cache.size() chunks.
    void hvp_cached(ConstVecRef x, ConstMatRef V, MatRef HV, const std::vector<State>& cache) const
    {
        check_dim(x);
        require(V.rows() == dim(),
                "V has " + std::to_string(V.rows()) + " rows, expected dim = " + std::to_string(dim()));
        require(HV.rows() == V.rows() && HV.cols() == V.cols(), "HV must have the shape of V");
        const Vector xw = x;
        const Matrix Vw = V;
        Matrix acc = Matrix::Zero(dim(), V.cols());
        State local;
        detail::MLPDirectionWork work;
        for (Index c = 0; c < chunking().count(); ++c) {
            check_interrupt();
            const State* st = &local;
            if (c < static_cast<Index>(cache.size()))
                st = &cache[static_cast<size_t>(c)];
            else
                chunk_state(xw.data(), c, local);
            for (Index g0 = 0; g0 < V.cols(); g0 += detail::kDirectionGroup) {
                if (g0 > 0) check_interrupt();  // a wide block is many groups per chunk
                const Index mg = std::min(detail::kDirectionGroup, V.cols() - g0);
                r_pass(xw.data(), Vw, g0, mg, *st, work, acc);
            }
        }
        HV = acc;
    }

    void third(ConstVecRef x, ConstVecRef u, VecRef out) const override
    {
        check_dim(x);
        check_dim(u, "u");
        const Vector xw = x, uw = u;
        Vector acc = Vector::Zero(dim());
        State st;
        detail::MLPDirectionWork work;
        for (Index c = 0; c < chunking().count(); ++c) {
            check_interrupt();
            allocate(st, chunking().begin(c), chunking().length(c), 3);
            third_chunk(xw.data(), uw.data(), st, work, acc);
        }
        out = acc;
    }

    // The forward pass and deltas of chunk c at the parameters p, as the HVP needs them.
    void chunk_state(const double* p, Index c, State& st) const
    {
        allocate(st, chunking().begin(c), chunking().length(c), 2);
        passes().forward(p, data_chunk(st), st, 2);
        output(st, true);
        passes().backward(p, data_chunk(st), st, nullptr, true);
    }

    std::shared_ptr<LinearOperator> hessian(ConstVecRef x) const override;

    // Network outputs f(x_i) for the rows of X (n, d): an (n, k) matrix.
    RowMatrix predict(ConstVecRef x, ConstRowMatRef X) const
    {
        require(X.cols() == input_dim(),
                "X has " + std::to_string(X.cols()) + " columns, expected " + std::to_string(input_dim()));
        require(X.allFinite(), "X contains NaN or inf");
        return outputs(x, X.data(), X.rows(), X.outerStride());
    }
    // The outputs on the training inputs.
    RowMatrix predict(ConstVecRef x) const { return outputs(x, m_Xt.data(), n_samples(), m_Xt.rows()); }

    // The Jacobian of the outputs on the training inputs, dF(x_i)_k / dtheta, as an
    // (n k, dim) matrix whose row i k + k matches the row-major flattening of predict(x)
    // (the Gauss-Newton end game of the flow solves in this output space). Per sample,
    // dF_k / dW_l = delta_l a_{l-1}^T with delta seeded by e_k at the output: one backward
    // pass of the deltas per output unit and chunk, no sum over samples, so the entries
    // do not depend on the thread count.
    RowMatrix output_jacobian(ConstVecRef x) const
    {
        check_dim(x);
        const Vector xw = x;
        const Index P = dim();
        RowMatrix J = RowMatrix::Zero(n_samples() * m_k, P);
        const detail::MLPPasses pass = passes();
        State st;
        for (Index c = 0; c < chunking().count(); ++c) {
            check_interrupt();
            allocate(st, chunking().begin(c), chunking().length(c), 1);
            const detail::StridedMap X0 = data_chunk(st);
            pass.forward(xw.data(), X0, st, 1);
            for (Index out = 0; out < m_k; ++out) {
                st.D.back().setZero();
                st.D.back().row(out).setOnes();
                pass.backward(xw.data(), X0, st, nullptr, false);
                for (size_t l = 0; l < layers().size(); ++l) {
                    const MLPLayer& L = layers()[l];
                    const detail::StridedMap in = detail::MLPPasses::layer_input(X0, st.A, l);
                    for (Index j = 0; j < st.cols; ++j) {
                        double* row = J.data() + ((st.start + j) * m_k + out) * P;
                        MLPLayout::MutRowMap(row + L.w_offset, L.out, L.in).noalias() =
                            st.D[l].col(j) * in.col(j).transpose();
                        if (L.b_offset >= 0) Eigen::Map<Vector>(row + L.b_offset, L.out) = st.D[l].col(j);
                    }
                }
            }
        }
        return J;
    }

private:
    MLP(ConstRowMatRef X, Matrix Yt, LabelVector labels, Index k, const std::vector<Index>& hidden,
        const std::string& activation, MLPLoss loss, bool bias, double cache_bytes)
        : m_Xt(checked_data(X, cache_bytes).transpose()),
          m_Yt(std::move(Yt)),
          m_labels(std::move(labels)),
          m_k(k),
          m_act(parse_activation(activation)),
          m_loss(loss),
          m_bias(bias),
          m_cache_bytes(cache_bytes),
          m_layout(X.cols(), hidden, k, bias)
    {
    }

    static ConstRowMatRef checked_data(ConstRowMatRef X, double cache_bytes)
    {
        require(X.rows() >= 1 && X.cols() >= 1, "X must have at least one row and one column");
        require(X.allFinite(), "X contains NaN or inf");
        require(cache_bytes >= 0, "the Hessian cache size must be >= 0");
        return X;
    }

    detail::MLPPasses passes() const { return detail::MLPPasses(m_layout, m_act); }

    // Calls f with this network's loss head.
    template <class F>
    decltype(auto) with_head(F&& f) const
    {
        return visit_head(m_loss, m_Yt, m_labels, std::forward<F>(f));
    }

    void allocate(State& st, Index start, Index cols, int order) const
    {
        const Index prob_rows = with_head([&](const auto& head) { return head.kProbabilities ? m_k : 0; });
        passes().allocate(st, start, cols, order, prob_rows);
    }

    // Outputs for n samples stored one per `stride` doubles from `data`.
    RowMatrix outputs(ConstVecRef x, const double* data, Index n, Index stride) const
    {
        check_dim(x);
        const Vector xw = x;
        RowMatrix out(n, m_k);
        const Chunking chunks(n, detail::kSampleChunk);
        State st;
        for (Index c = 0; c < chunks.count(); ++c) {
            check_interrupt();
            allocate(st, chunks.begin(c), chunks.length(c), 0);
            const detail::StridedMap in(data + st.start * stride, input_dim(), st.cols,
                                        Eigen::OuterStride<>(stride));
            passes().forward(xw.data(), in, st, 0);
            out.middleRows(st.start, st.cols) = st.A.back().transpose();
        }
        return out;
    }

    Chunking chunking() const { return Chunking(n_samples(), detail::kSampleChunk); }

    detail::StridedMap data_chunk(const State& st) const
    {
        return detail::StridedMap(m_Xt.data() + st.start * m_Xt.rows(), m_Xt.rows(), st.cols,
                                  Eigen::OuterStride<>(m_Xt.rows()));
    }

    // Sum over the chunk's samples of the unnormalised loss; with `deltas`,
    // also delta_{L-1} = dL/dF (including the 1/n) and, for CE, P.
    double output(State& st, bool deltas) const
    {
        const Matrix& F = st.A.back();
        const double inv_n = 1.0 / static_cast<double>(n_samples());
        Matrix* D = deltas ? &st.D.back() : nullptr;
        return with_head([&](const auto& head) {
            double total = 0.0;
            for (Index j = 0; j < st.cols; ++j) total += head.value(F, j, st.start + j, inv_n, D, &st.P);
            return total;
        });
    }

    // R-operator pass of one chunk for directions g0 .. g0 + mg - 1 of V;
    // adds H V for those columns into acc.
    void r_pass(const double* p, const Matrix& V, Index g0, Index mg, const State& st,
                detail::MLPDirectionWork& w, Matrix& acc) const
    {
        const detail::StridedMap X0 = data_chunk(st);
        passes().r_forward(p, V, g0, mg, X0, st, w);
        // R delta at the output: l''(F) RF / n.
        const double inv_n = 1.0 / static_cast<double>(n_samples());
        const Index nc = st.cols;
        with_head([&](const auto& head) {
            for (Index col = 0; col < mg * nc; ++col)
                head.second(st.P, w.RZ.back(), col, col % nc, inv_n, w.RD.back());
        });
        passes().r_backward(p, V, g0, mg, X0, st, w, acc);
    }

    // grad_theta (u^T H u) contributions of one chunk, added to acc.
    void third_chunk(const double* p, const double* u, State& st, detail::MLPDirectionWork& w,
                     Vector& acc) const
    {
        const detail::StridedMap X0 = data_chunk(st);
        passes().third_forward(p, u, X0, st, w);
        // Adjoints at the output of phi = l''(F)[RF, RF] + l'(F) QF.
        const double inv_n = 1.0 / static_cast<double>(n_samples());
        with_head([&](const auto& head) {
            for (Index j = 0; j < st.cols; ++j)
                head.third(st.A.back(), w.RZ.back(), w.QZ.back(), j, st.start + j, inv_n, w.Zb.back(),
                           w.RZb.back(), w.QZb.back());
        });
        passes().third_backward(p, u, X0, st, w, acc);
    }

    Matrix m_Xt;  // (d, n): one sample per column
    Matrix m_Yt;  // (k, n) regression targets
    LabelVector m_labels;
    Index m_k;
    Activation m_act;
    MLPLoss m_loss;
    bool m_bias;
    double m_cache_bytes;
    MLPLayout m_layout;
};

}  // namespace eosfast

#include "mlp_hessian.hpp"  // MLP::hessian, defined with the operator it returns
