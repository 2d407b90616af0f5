// A fully connected network f(x; theta) on data X (n, d) with a linear output
// layer, and its loss, gradient, Hessian-vector products and third-derivative
// products, all exact.
//
//   Z_l = W_l A_{l-1} + b_l,  A_l = sigma(Z_l) (hidden),  F = Z_{L-1},  A_{-1} = X^T
//   mse: L = 1/(2n) sum_i ||F_i - y_i||^2     ce: L = 1/n sum_i (logsumexp(F_i) - F_{i,y_i})
//
// theta is the concatenation over layers of W_l (out, in) in row-major order,
// then b_l: torch.nn.utils.parameters_to_vector of a stack of nn.Linear.
// Activations are stored feature-major: a chunk of c samples is an (width, c)
// matrix, one sample per column.
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
// Samples are processed in chunks of kSampleChunk; within a chunk every matrix
// product runs over a fixed tiling (tiling.hpp) and weight derivatives are
// accumulated chunk after chunk, so results do not depend on the thread count
// and memory stays O(params + chunk x sum of widths).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../core/interrupt.hpp"
#include "../core/vector_ops.hpp"
#include "activations.hpp"
#include "problem.hpp"
#include "tiling.hpp"

namespace eosfast {

enum class MLPLoss { MSE, CrossEntropy };

inline MLPLoss parse_mlp_loss(const std::string& name)
{
    if (name == "mse") return MLPLoss::MSE;
    if (name == "ce") return MLPLoss::CrossEntropy;
    throw std::invalid_argument("loss must be 'mse' or 'ce', got '" + name + "'");
}

struct MLPLayer {
    Index in, out;
    Index w_offset;  // W_l (out, in), row-major, at theta[w_offset]
    Index b_offset;  // b_l at theta[b_offset]; -1 without bias
    bool hidden;     // followed by the activation
};

using ConstRowMatRef = Eigen::Ref<const RowMatrix>;
using LabelVector = Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>;

namespace detail {

// Samples per chunk (fixed: part of the numerical result).
inline constexpr Index kSampleChunk = 256;
// Directions of a block HVP processed together (bounds the memory of a block).
inline constexpr Index kDirectionGroup = 8;

using StridedMap = Eigen::Map<const Matrix, 0, Eigen::OuterStride<>>;

// Quantities of one chunk at a point: the forward pass and the deltas.
struct MLPChunkState {
    Index start = 0, cols = 0;
    std::vector<Matrix> A;   // sigma(Z_l) for hidden layers, the outputs F for the last
    std::vector<Matrix> S1;  // sigma'(Z_l)
    std::vector<Matrix> S2;  // sigma''(Z_l); after backward_pass(fold=true): sigma''(Z_l) * G_l
    std::vector<Matrix> S3;  // sigma'''(Z_l)
    std::vector<Matrix> D;   // delta_l = dL/dZ_l
    Matrix P;                // softmax probabilities (cross-entropy)

    Index bytes() const
    {
        Index total = P.size();
        for (const auto* list : {&A, &S1, &S2, &S3, &D})
            for (const Matrix& m : *list) total += m.size();
        return total * static_cast<Index>(sizeof(double));
    }
};

// Directional (R) and second-order (Q) quantities and adjoints of one chunk.
struct MLPDirectionWork {
    std::vector<Matrix> RZ, RA, RD;    // HVP: R{Z}, R{A}, R{delta}, one column block per direction
    std::vector<Matrix> QZ, QA;        // third: second derivatives along u
    std::vector<Matrix> Zb, RZb, QZb;  // third: adjoints
};

inline void resize_all(std::vector<Matrix>& list, const std::vector<MLPLayer>& layers, Index cols,
                       bool hidden_only)
{
    list.resize(layers.size());
    for (size_t l = 0; l < layers.size(); ++l) {
        if (hidden_only && !layers[l].hidden)
            list[l].resize(0, 0);
        else
            list[l].resize(layers[l].out, cols);
    }
}

}  // namespace detail

class MLP : public SharedProblem {
public:
    using State = detail::MLPChunkState;
    using RowMap = Eigen::Map<const RowMatrix>;
    using MutRowMap = Eigen::Map<RowMatrix>;

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

    Index dim() const override { return m_dim; }
    std::string name() const override
    {
        std::string s = "MLP(" + std::to_string(input_dim());
        for (const MLPLayer& L : m_layers) s += "-" + std::to_string(L.out);
        return s + ", " + activation_name(m_act) + ", " + (m_loss == MLPLoss::MSE ? "mse" : "ce") + ")";
    }

    const std::vector<MLPLayer>& layers() const { return m_layers; }
    Activation activation() const { return m_act; }
    MLPLoss loss_kind() const { return m_loss; }
    bool has_bias() const { return m_bias; }
    Index n_samples() const { return m_Xt.cols(); }
    Index input_dim() const { return m_Xt.rows(); }
    Index output_dim() const { return m_k; }
    // The regression targets, (k, n) (empty for cross-entropy).
    const Matrix& targets() const { return m_Yt; }
    double cache_bytes() const { return m_cache_bytes; }
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
            forward(xw.data(), data_chunk(st), st, 0);
            total += output(st, false);
        }
        return total / static_cast<double>(n_samples());
    }

    double loss_and_grad(ConstVecRef x, VecRef g) const override
    {
        check_dim(x);
        const Vector xw = x;
        Vector acc = Vector::Zero(m_dim);
        State st;
        double total = 0.0;
        for (Index c = 0; c < chunking().count(); ++c) {
            check_interrupt();
            allocate(st, chunking().begin(c), chunking().length(c), 1);
            forward(xw.data(), data_chunk(st), st, 1);
            total += output(st, true);
            backward(xw.data(), data_chunk(st), st, &acc, false);
        }
        g = acc;
        return total / static_cast<double>(n_samples());
    }

    void hvp(ConstVecRef x, ConstMatRef V, MatRef HV) const override { hvp_cached(x, V, HV, {}); }

    // H(x) V using the chunk states in `cache` for its first cache.size() chunks.
    void hvp_cached(ConstVecRef x, ConstMatRef V, MatRef HV, const std::vector<State>& cache) const
    {
        check_dim(x);
        require(V.rows() == m_dim,
                "V has " + std::to_string(V.rows()) + " rows, expected dim = " + std::to_string(m_dim));
        require(HV.rows() == V.rows() && HV.cols() == V.cols(), "HV must have the shape of V");
        const Vector xw = x;
        const Matrix Vw = V;
        Matrix acc = Matrix::Zero(m_dim, V.cols());
        State local;
        detail::MLPDirectionWork work;
        for (Index c = 0; c < chunking().count(); ++c) {
            check_interrupt();
            const State* st = &local;
            if (c < static_cast<Index>(cache.size()))
                st = &cache[static_cast<size_t>(c)];
            else
                compute_state(xw.data(), c, local);
            for (Index g0 = 0; g0 < V.cols(); g0 += detail::kDirectionGroup) {
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
        Vector acc = Vector::Zero(m_dim);
        State st;
        detail::MLPDirectionWork work;
        for (Index c = 0; c < chunking().count(); ++c) {
            check_interrupt();
            allocate(st, chunking().begin(c), chunking().length(c), 3);
            third_chunk(xw.data(), uw.data(), st, work, acc);
        }
        out = acc;
    }

    // The chunk states of the first chunks that fit in cache_bytes().
    std::vector<State> hessian_cache(ConstVecRef x) const
    {
        check_dim(x);
        const Vector xw = x;
        const Index per_chunk = std::max<Index>(1, chunk_state_bytes());
        const Index fit = static_cast<Index>(m_cache_bytes / static_cast<double>(per_chunk));
        std::vector<State> cache(static_cast<size_t>(std::min(chunking().count(), std::max<Index>(fit, 0))));
        for (size_t c = 0; c < cache.size(); ++c) {
            check_interrupt();
            compute_state(xw.data(), static_cast<Index>(c), cache[c]);
        }
        return cache;
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
        RowMatrix J = RowMatrix::Zero(n_samples() * m_k, m_dim);
        State st;
        for (Index c = 0; c < chunking().count(); ++c) {
            check_interrupt();
            allocate(st, chunking().begin(c), chunking().length(c), 1);
            const detail::StridedMap X0 = data_chunk(st);
            forward(xw.data(), X0, st, 1);
            for (Index out = 0; out < m_k; ++out) {
                st.D.back().setZero();
                st.D.back().row(out).setOnes();
                backward(xw.data(), X0, st, nullptr, false);
                for (size_t l = 0; l < m_layers.size(); ++l) {
                    const MLPLayer& L = m_layers[l];
                    const detail::StridedMap in = layer_input(X0, st.A, l);
                    for (Index j = 0; j < st.cols; ++j) {
                        double* row = J.data() + ((st.start + j) * m_k + out) * m_dim;
                        MutRowMap(row + L.w_offset, L.out, L.in).noalias() =
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
        : m_Yt(std::move(Yt)),
          m_labels(std::move(labels)),
          m_k(k),
          m_act(parse_activation(activation)),
          m_loss(loss),
          m_bias(bias),
          m_cache_bytes(cache_bytes)
    {
        require(X.rows() >= 1 && X.cols() >= 1, "X must have at least one row and one column");
        require(X.allFinite(), "X contains NaN or inf");
        require(cache_bytes >= 0, "the Hessian cache size must be >= 0");
        Index in = X.cols(), offset = 0;
        for (size_t l = 0; l <= hidden.size(); ++l) {
            const bool is_hidden = l < hidden.size();
            const Index out = is_hidden ? hidden[l] : k;
            require(out >= 1, "hidden[" + std::to_string(l) + "] must be >= 1, got " + std::to_string(out));
            MLPLayer L{in, out, offset, -1, is_hidden};
            offset += in * out;
            if (bias) {
                L.b_offset = offset;
                offset += out;
            }
            m_layers.push_back(L);
            in = out;
        }
        m_dim = offset;
        m_Xt = X.transpose();
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
            forward(xw.data(), in, st, 0);
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

    // The input of layer l: the data chunk or the previous activations.
    static detail::StridedMap layer_input(const detail::StridedMap& X0, const std::vector<Matrix>& A,
                                          size_t l)
    {
        if (l == 0) return X0;
        const Matrix& a = A[l - 1];
        return detail::StridedMap(a.data(), a.rows(), a.cols(), Eigen::OuterStride<>(a.rows()));
    }

    RowMap weight(const double* p, const MLPLayer& L) const { return RowMap(p + L.w_offset, L.out, L.in); }

    // order: 0 value, 1 gradient, 2 HVP (adds S2 and deltas), 3 third (adds S3).
    void allocate(State& st, Index start, Index cols, int order) const
    {
        st.start = start;
        st.cols = cols;
        detail::resize_all(st.A, m_layers, cols, false);
        detail::resize_all(st.S1, m_layers, order >= 1 ? cols : 0, true);
        detail::resize_all(st.S2, m_layers, order >= 2 ? cols : 0, true);
        detail::resize_all(st.S3, m_layers, order >= 3 ? cols : 0, true);
        detail::resize_all(st.D, m_layers, order == 1 || order == 2 ? cols : 0, false);
        st.P.resize(m_loss == MLPLoss::CrossEntropy && order >= 1 ? m_k : 0, cols);
    }

    // Forward pass of one chunk; derivatives of sigma up to `order` (<= 3).
    void forward(const double* p, const detail::StridedMap& X0, State& st, int order) const
    {
        for (size_t l = 0; l < m_layers.size(); ++l) {
            const MLPLayer& L = m_layers[l];
            const RowMap W = weight(p, L);
            const detail::StridedMap in = layer_input(X0, st.A, l);
            Matrix& Z = st.A[l];
            detail::run_tiles(detail::Tiling(L.out, st.cols, 1, L.in), [&](const detail::Tile& t) {
                auto z = Z.block(t.r0, t.c0, t.rl, t.cl);
                z.noalias() = W.middleRows(t.r0, t.rl) * in.middleCols(t.c0, t.cl);
                if (L.b_offset >= 0) z.colwise() += Eigen::Map<const Vector>(p + L.b_offset + t.r0, t.rl);
                if (!L.hidden) return;
                for (Index j = t.c0; j < t.c0 + t.cl; ++j)
                    activate(m_act, std::min(order, 3), &Z(t.r0, j), t.rl,
                             order >= 1 ? &st.S1[l](t.r0, j) : nullptr,
                             order >= 2 ? &st.S2[l](t.r0, j) : nullptr,
                             order >= 3 ? &st.S3[l](t.r0, j) : nullptr);
            });
        }
    }

    // Sum over the chunk's samples of the unnormalised loss; with `deltas`,
    // also delta_{L-1} = dL/dF (including the 1/n) and, for CE, P.
    double output(State& st, bool deltas) const
    {
        const Matrix& F = st.A.back();
        const double inv_n = 1.0 / static_cast<double>(n_samples());
        double total = 0.0;
        for (Index j = 0; j < st.cols; ++j) {
            const Index i = st.start + j;
            double value = 0.0;
            if (m_loss == MLPLoss::MSE) {
                for (Index k = 0; k < m_k; ++k) {
                    const double r = F(k, j) - m_Yt(k, i);
                    value += r * r;
                    if (deltas) st.D.back()(k, j) = r * inv_n;
                }
                value *= 0.5;
            } else {
                const Index y = static_cast<Index>(m_labels[i]);
                double mx = F(0, j);
                for (Index k = 1; k < m_k; ++k) mx = std::max(mx, F(k, j));
                double sum = 0.0;
                for (Index k = 0; k < m_k; ++k) sum += std::exp(F(k, j) - mx);
                const double lse = mx + std::log(sum);
                value = lse - F(y, j);
                if (deltas) {
                    for (Index k = 0; k < m_k; ++k) {
                        const double pk = std::exp(F(k, j) - lse);
                        st.P(k, j) = pk;
                        st.D.back()(k, j) = (pk - (k == y ? 1.0 : 0.0)) * inv_n;
                    }
                }
            }
            total += value;
        }
        return total;
    }

    // Backpropagation of one chunk: deltas of every layer, and with `grad` the
    // weight gradient added to *grad. With `fold`, S2[l] becomes sigma''(Z_l) G_l.
    void backward(const double* p, const detail::StridedMap& X0, State& st, Vector* grad, bool fold) const
    {
        for (size_t l = m_layers.size(); l-- > 0;) {
            const MLPLayer& L = m_layers[l];
            const RowMap W = weight(p, L);
            const detail::StridedMap in = layer_input(X0, st.A, l);
            const Matrix& D = st.D[l];
            const detail::Tiling tw(grad ? L.out : 0, L.in, 1, st.cols),
                tg(l > 0 ? L.in : 0, st.cols, 1, L.out);
            detail::run_tiles(
                tw,
                [&](const detail::Tile& t) {
                    MutRowMap gW(grad->data() + L.w_offset, L.out, L.in);
                    gW.block(t.r0, t.c0, t.rl, t.cl).noalias() +=
                        D.middleRows(t.r0, t.rl) * in.middleRows(t.c0, t.cl).transpose();
                    if (L.b_offset >= 0 && t.c0 == 0)
                        add_row_sums(D.middleRows(t.r0, t.rl), grad->data() + L.b_offset + t.r0);
                },
                tg,
                [&](const detail::Tile& t) {
                    auto d = st.D[l - 1].block(t.r0, t.c0, t.rl, t.cl);
                    d.noalias() = W.middleCols(t.r0, t.rl).transpose() * D.middleCols(t.c0, t.cl);
                    if (fold) st.S2[l - 1].block(t.r0, t.c0, t.rl, t.cl).array() *= d.array();
                    d.array() *= st.S1[l - 1].block(t.r0, t.c0, t.rl, t.cl).array();
                });
        }
    }

    // out[r] += sum_j M(r, j), summed in column order.
    template <class Block>
    static void add_row_sums(const Block& M, double* out)
    {
        Eigen::Map<Vector> o(out, M.rows());
        for (Index j = 0; j < M.cols(); ++j) o += M.col(j);
    }

    // Forward pass and deltas of chunk c, as the HVP needs them.
    void compute_state(const double* p, Index c, State& st) const
    {
        allocate(st, chunking().begin(c), chunking().length(c), 2);
        forward(p, data_chunk(st), st, 2);
        output(st, true);
        backward(p, data_chunk(st), st, nullptr, true);
    }

    // R-operator pass of one chunk for directions g0 .. g0 + mg - 1 of V;
    // adds H V for those columns into acc.
    void r_pass(const double* p, const Matrix& V, Index g0, Index mg, const State& st,
                detail::MLPDirectionWork& w, Matrix& acc) const
    {
        const Index nc = st.cols, nl = static_cast<Index>(m_layers.size());
        const detail::StridedMap X0 = data_chunk(st);
        detail::resize_all(w.RZ, m_layers, mg * nc, false);
        detail::resize_all(w.RA, m_layers, mg * nc, true);
        detail::resize_all(w.RD, m_layers, mg * nc, false);
        const auto dir = [&](Index j) { return V.col(g0 + j).data(); };

        for (Index l = 0; l < nl; ++l) {
            const MLPLayer& L = m_layers[static_cast<size_t>(l)];
            const RowMap W = weight(p, L);
            const detail::StridedMap in = layer_input(X0, st.A, static_cast<size_t>(l));
            detail::run_tiles(detail::Tiling(L.out, nc, mg, 2 * L.in), [&](const detail::Tile& t) {
                const Index jc = t.group * nc;
                auto r = w.RZ[l].block(t.r0, jc + t.c0, t.rl, t.cl);
                r.noalias() = weight(dir(t.group), L).middleRows(t.r0, t.rl) * in.middleCols(t.c0, t.cl);
                if (l > 0) r.noalias() += W.middleRows(t.r0, t.rl) * w.RA[l - 1].middleCols(jc + t.c0, t.cl);
                if (L.b_offset >= 0)
                    r.colwise() += Eigen::Map<const Vector>(dir(t.group) + L.b_offset + t.r0, t.rl);
                if (L.hidden)
                    w.RA[l].block(t.r0, jc + t.c0, t.rl, t.cl) =
                        st.S1[l].block(t.r0, t.c0, t.rl, t.cl).cwiseProduct(r);
            });
        }

        // R delta at the output: l''(F) RF (MSE: RF / n; CE: (diag P - P P^T) RF / n).
        const double inv_n = 1.0 / static_cast<double>(n_samples());
        const Matrix& RF = w.RZ.back();
        Matrix& RDo = w.RD.back();
        for (Index col = 0; col < mg * nc; ++col) {
            if (m_loss == MLPLoss::MSE) {
                RDo.col(col) = RF.col(col) * inv_n;
            } else {
                const Index j = col % nc;
                double s = 0.0;
                for (Index k = 0; k < m_k; ++k) s += st.P(k, j) * RF(k, col);
                for (Index k = 0; k < m_k; ++k) RDo(k, col) = st.P(k, j) * (RF(k, col) - s) * inv_n;
            }
        }

        for (Index l = nl; l-- > 0;) {
            const MLPLayer& L = m_layers[static_cast<size_t>(l)];
            const RowMap W = weight(p, L);
            const detail::StridedMap in = layer_input(X0, st.A, static_cast<size_t>(l));
            const Matrix& RD = w.RD[l];
            detail::run_tiles(
                detail::Tiling(L.out, L.in, mg, 2 * nc),
                [&](const detail::Tile& t) {
                    const Index jc = t.group * nc;
                    double* h = acc.col(g0 + t.group).data();
                    auto hw = MutRowMap(h + L.w_offset, L.out, L.in).block(t.r0, t.c0, t.rl, t.cl);
                    hw.noalias() += RD.block(t.r0, jc, t.rl, nc) * in.middleRows(t.c0, t.cl).transpose();
                    if (l > 0)
                        hw.noalias() += st.D[l].middleRows(t.r0, t.rl) *
                                        w.RA[l - 1].block(t.c0, jc, t.cl, nc).transpose();
                    if (L.b_offset >= 0 && t.c0 == 0)
                        add_row_sums(RD.block(t.r0, jc, t.rl, nc), h + L.b_offset + t.r0);
                },
                detail::Tiling(l > 0 ? L.in : 0, nc, mg, 2 * L.out),
                [&](const detail::Tile& t) {
                    const Index jc = t.group * nc;
                    auto rd = w.RD[l - 1].block(t.r0, jc + t.c0, t.rl, t.cl);
                    rd.noalias() = weight(dir(t.group), L).middleCols(t.r0, t.rl).transpose() *
                                   st.D[l].middleCols(t.c0, t.cl);
                    rd.noalias() +=
                        W.middleCols(t.r0, t.rl).transpose() * RD.block(0, jc + t.c0, L.out, t.cl);
                    rd = rd.cwiseProduct(st.S1[l - 1].block(t.r0, t.c0, t.rl, t.cl)) +
                         st.S2[l - 1]
                             .block(t.r0, t.c0, t.rl, t.cl)
                             .cwiseProduct(w.RZ[l - 1].block(t.r0, jc + t.c0, t.rl, t.cl));
                });
        }
    }

    // grad_theta (u^T H u) contributions of one chunk, added to acc.
    void third_chunk(const double* p, const double* u, State& st, detail::MLPDirectionWork& w,
                     Vector& acc) const
    {
        const Index nc = st.cols, nl = static_cast<Index>(m_layers.size());
        const detail::StridedMap X0 = data_chunk(st);
        for (auto* list : {&w.RZ, &w.QZ, &w.Zb, &w.RZb, &w.QZb})
            detail::resize_all(*list, m_layers, nc, false);
        for (auto* list : {&w.RA, &w.QA}) detail::resize_all(*list, m_layers, nc, true);

        for (Index l = 0; l < nl; ++l) {
            const MLPLayer& L = m_layers[static_cast<size_t>(l)];
            const RowMap W = weight(p, L), U = weight(u, L);
            const detail::StridedMap in = layer_input(X0, st.A, static_cast<size_t>(l));
            detail::run_tiles(detail::Tiling(L.out, nc, 1, 5 * L.in), [&](const detail::Tile& t) {
                auto z = st.A[l].block(t.r0, t.c0, t.rl, t.cl);
                auto rz = w.RZ[l].block(t.r0, t.c0, t.rl, t.cl);
                auto qz = w.QZ[l].block(t.r0, t.c0, t.rl, t.cl);
                z.noalias() = W.middleRows(t.r0, t.rl) * in.middleCols(t.c0, t.cl);
                rz.noalias() = U.middleRows(t.r0, t.rl) * in.middleCols(t.c0, t.cl);
                if (l > 0) {
                    rz.noalias() += W.middleRows(t.r0, t.rl) * w.RA[l - 1].middleCols(t.c0, t.cl);
                    qz.noalias() = U.middleRows(t.r0, t.rl) * w.RA[l - 1].middleCols(t.c0, t.cl);
                    qz *= 2.0;
                    qz.noalias() += W.middleRows(t.r0, t.rl) * w.QA[l - 1].middleCols(t.c0, t.cl);
                } else {
                    qz.setZero();
                }
                if (L.b_offset >= 0) {
                    z.colwise() += Eigen::Map<const Vector>(p + L.b_offset + t.r0, t.rl);
                    rz.colwise() += Eigen::Map<const Vector>(u + L.b_offset + t.r0, t.rl);
                }
                if (!L.hidden) return;
                for (Index j = t.c0; j < t.c0 + t.cl; ++j)
                    activate(m_act, 3, &st.A[l](t.r0, j), t.rl, &st.S1[l](t.r0, j), &st.S2[l](t.r0, j),
                             &st.S3[l](t.r0, j));
                const auto s1 = st.S1[l].block(t.r0, t.c0, t.rl, t.cl).array();
                const auto s2 = st.S2[l].block(t.r0, t.c0, t.rl, t.cl).array();
                w.RA[l].block(t.r0, t.c0, t.rl, t.cl) = (s1 * rz.array()).matrix();
                w.QA[l].block(t.r0, t.c0, t.rl, t.cl) = (s2 * rz.array().square() + s1 * qz.array()).matrix();
            });
        }

        // Adjoints at the output of phi = l''(F)[RF, RF] + l'(F) QF.
        const double inv_n = 1.0 / static_cast<double>(n_samples());
        const Matrix &F = st.A.back(), &RF = w.RZ.back(), &QF = w.QZ.back();
        for (Index j = 0; j < nc; ++j) {
            const Index i = st.start + j;
            if (m_loss == MLPLoss::MSE) {
                for (Index k = 0; k < m_k; ++k) {
                    w.Zb.back()(k, j) = QF(k, j) * inv_n;
                    w.RZb.back()(k, j) = 2.0 * RF(k, j) * inv_n;
                    w.QZb.back()(k, j) = (F(k, j) - m_Yt(k, i)) * inv_n;
                }
            } else {
                const Index y = static_cast<Index>(m_labels[i]);
                double mx = F(0, j);
                for (Index k = 1; k < m_k; ++k) mx = std::max(mx, F(k, j));
                double sum = 0.0;
                for (Index k = 0; k < m_k; ++k) sum += std::exp(F(k, j) - mx);
                const double lse = mx + std::log(sum);
                double s = 0.0, t2 = 0.0, q = 0.0;
                for (Index k = 0; k < m_k; ++k) {
                    const double pk = std::exp(F(k, j) - lse);
                    s += pk * RF(k, j);
                    t2 += pk * RF(k, j) * RF(k, j);
                    q += pk * QF(k, j);
                }
                for (Index k = 0; k < m_k; ++k) {
                    const double pk = std::exp(F(k, j) - lse), d = RF(k, j) - s;
                    // d/dF of P.RF^2 - (P.RF)^2 is P (d^2 - (t - s^2)); l''(F) QF = P (QF - P.QF)
                    w.Zb.back()(k, j) = pk * (d * d - (t2 - s * s) + QF(k, j) - q) * inv_n;
                    w.RZb.back()(k, j) = 2.0 * pk * d * inv_n;
                    w.QZb.back()(k, j) = (pk - (k == y ? 1.0 : 0.0)) * inv_n;
                }
            }
        }

        for (Index l = nl; l-- > 0;) {
            const MLPLayer& L = m_layers[static_cast<size_t>(l)];
            const RowMap W = weight(p, L), U = weight(u, L);
            const detail::StridedMap in = layer_input(X0, st.A, static_cast<size_t>(l));
            const Matrix &Zb = w.Zb[l], &RZb = w.RZb[l], &QZb = w.QZb[l];
            detail::run_tiles(
                detail::Tiling(L.out, L.in, 1, 3 * nc),
                [&](const detail::Tile& t) {
                    auto g = MutRowMap(acc.data() + L.w_offset, L.out, L.in).block(t.r0, t.c0, t.rl, t.cl);
                    g.noalias() += Zb.middleRows(t.r0, t.rl) * in.middleRows(t.c0, t.cl).transpose();
                    if (l > 0) {
                        g.noalias() +=
                            RZb.middleRows(t.r0, t.rl) * w.RA[l - 1].middleRows(t.c0, t.cl).transpose();
                        g.noalias() +=
                            QZb.middleRows(t.r0, t.rl) * w.QA[l - 1].middleRows(t.c0, t.cl).transpose();
                    }
                    if (L.b_offset >= 0 && t.c0 == 0)
                        add_row_sums(Zb.middleRows(t.r0, t.rl), acc.data() + L.b_offset + t.r0);
                },
                detail::Tiling(l > 0 ? L.in : 0, nc, 1, 5 * L.out),
                [&](const detail::Tile& t) {
                    const auto Wt = W.middleCols(t.r0, t.rl).transpose();
                    const auto Ut = U.middleCols(t.r0, t.rl).transpose();
                    Matrix ab = Wt * Zb.middleCols(t.c0, t.cl);
                    ab.noalias() += Ut * RZb.middleCols(t.c0, t.cl);
                    Matrix rab = Ut * QZb.middleCols(t.c0, t.cl);
                    rab *= 2.0;
                    rab.noalias() += Wt * RZb.middleCols(t.c0, t.cl);
                    Matrix qab = Wt * QZb.middleCols(t.c0, t.cl);
                    const auto s1 = st.S1[l - 1].block(t.r0, t.c0, t.rl, t.cl).array();
                    const auto s2 = st.S2[l - 1].block(t.r0, t.c0, t.rl, t.cl).array();
                    const auto s3 = st.S3[l - 1].block(t.r0, t.c0, t.rl, t.cl).array();
                    const auto rz = w.RZ[l - 1].block(t.r0, t.c0, t.rl, t.cl).array();
                    const auto qz = w.QZ[l - 1].block(t.r0, t.c0, t.rl, t.cl).array();
                    w.QZb[l - 1].block(t.r0, t.c0, t.rl, t.cl) = (s1 * qab.array()).matrix();
                    w.RZb[l - 1].block(t.r0, t.c0, t.rl, t.cl) =
                        (s1 * rab.array() + 2.0 * s2 * rz * qab.array()).matrix();
                    w.Zb[l - 1].block(t.r0, t.c0, t.rl, t.cl) =
                        (s1 * ab.array() + s2 * rz * rab.array() + (s3 * rz.square() + s2 * qz) * qab.array())
                            .matrix();
                });
        }
    }

    Matrix m_Xt;  // (d, n): one sample per column
    Matrix m_Yt;  // (k, n) regression targets
    LabelVector m_labels;
    Index m_k;
    Activation m_act;
    MLPLoss m_loss;
    bool m_bias;
    double m_cache_bytes;
    std::vector<MLPLayer> m_layers;
    Index m_dim = 0;
};

// The Hessian of an MLP at x. The forward pass and deltas of the first chunks
// (as many as fit in the MLP's cache budget) are computed once here and shared
// by every product; products are bitwise equal to MLP::hvp.
class MLPHessian : public HessianOperator {
public:
    MLPHessian(std::shared_ptr<const MLP> mlp, ConstVecRef x)
        : HessianOperator(mlp, x), m_mlp(std::move(mlp)), m_cache(m_mlp->hessian_cache(x))
    {
    }
    void apply(ConstMatRef V, MatRef out) const override { m_mlp->hvp_cached(point(), V, out, m_cache); }
    Index cached_chunks() const { return static_cast<Index>(m_cache.size()); }

private:
    std::shared_ptr<const MLP> m_mlp;
    std::vector<MLP::State> m_cache;
};

inline std::shared_ptr<LinearOperator> MLP::hessian(ConstVecRef x) const
{
    check_dim(x);
    return std::make_shared<MLPHessian>(std::static_pointer_cast<const MLP>(shared_from_this()), x);
}

}  // namespace eosfast
