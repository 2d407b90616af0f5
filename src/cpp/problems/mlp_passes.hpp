// The passes of an MLP over one chunk of samples (the math is in mlp.hpp):
// the forward pass, backpropagation, the forward and reverse halves of the
// R-operator (HVP) and of the third-derivative pass. The passes know the
// layers and the activation, not the loss: between the halves of a pass the
// caller applies the loss head at the output (mlp_heads.hpp).
//
// Within a chunk every matrix product runs over a fixed tiling (tiling.hpp),
// so results do not depend on the thread count.
#pragma once

#include <vector>

#include "activations.hpp"
#include "mlp_layout.hpp"
#include "tiling.hpp"

namespace eosfast {

namespace detail {

using StridedMap = Eigen::Map<const Matrix, 0, Eigen::OuterStride<>>;

// Quantities of one chunk at a point: the forward pass and the deltas.
struct MLPChunkState {
    Index start = 0, cols = 0;
    std::vector<Matrix> A;   // sigma(Z_l) for hidden layers, the outputs F for the last
    std::vector<Matrix> S1;  // sigma'(Z_l)
    std::vector<Matrix> S2;  // sigma''(Z_l); after backward(fold=true): sigma''(Z_l) * G_l
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

// out[r] += sum_j M(r, j), summed in column order.
template <class Block>
void add_row_sums(const Block& M, double* out)
{
    Eigen::Map<Vector> o(out, M.rows());
    for (Index j = 0; j < M.cols(); ++j) o += M.col(j);
}

class MLPPasses {
public:
    using State = MLPChunkState;
    using RowMap = MLPLayout::RowMap;
    using MutRowMap = MLPLayout::MutRowMap;

    MLPPasses(const MLPLayout& layout, Activation act) : m_layers(layout.layers()), m_act(act) {}

    // order: 0 value, 1 gradient, 2 HVP (adds S2 and deltas), 3 third (adds S3);
    // prob_rows: rows of P (the output width when the loss head keeps P, else 0).
    void allocate(State& st, Index start, Index cols, int order, Index prob_rows) const
    {
        st.start = start;
        st.cols = cols;
        resize_all(st.A, m_layers, cols, false);
        resize_all(st.S1, m_layers, order >= 1 ? cols : 0, true);
        resize_all(st.S2, m_layers, order >= 2 ? cols : 0, true);
        resize_all(st.S3, m_layers, order >= 3 ? cols : 0, true);
        resize_all(st.D, m_layers, order == 1 || order == 2 ? cols : 0, false);
        st.P.resize(order >= 1 ? prob_rows : 0, cols);
    }

    // Forward pass of one chunk; derivatives of sigma up to `order` (<= 3).
    void forward(const double* p, const StridedMap& X0, State& st, int order) const
    {
        for (size_t l = 0; l < m_layers.size(); ++l) {
            const MLPLayer& L = m_layers[l];
            const RowMap W = MLPLayout::weight(p, L);
            const StridedMap in = layer_input(X0, st.A, l);
            Matrix& Z = st.A[l];
            run_tiles(Tiling(L.out, st.cols, 1, L.in), [&](const Tile& t) {
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

    // Backpropagation of one chunk from the output delta st.D.back(): deltas of
    // every layer, and with `grad` the weight gradient added to *grad. With
    // `fold`, S2[l] becomes sigma''(Z_l) G_l.
    void backward(const double* p, const StridedMap& X0, State& st, Vector* grad, bool fold) const
    {
        for (size_t l = m_layers.size(); l-- > 0;) {
            const MLPLayer& L = m_layers[l];
            const RowMap W = MLPLayout::weight(p, L);
            const StridedMap in = layer_input(X0, st.A, l);
            const Matrix& D = st.D[l];
            const Tiling tw(grad ? L.out : 0, L.in, 1, st.cols), tg(l > 0 ? L.in : 0, st.cols, 1, L.out);
            run_tiles(
                tw,
                [&](const Tile& t) {
                    MutRowMap gW(grad->data() + L.w_offset, L.out, L.in);
                    gW.block(t.r0, t.c0, t.rl, t.cl).noalias() +=
                        D.middleRows(t.r0, t.rl) * in.middleRows(t.c0, t.cl).transpose();
                    if (L.b_offset >= 0 && t.c0 == 0)
                        add_row_sums(D.middleRows(t.r0, t.rl), grad->data() + L.b_offset + t.r0);
                },
                tg,
                [&](const Tile& t) {
                    auto d = st.D[l - 1].block(t.r0, t.c0, t.rl, t.cl);
                    d.noalias() = W.middleCols(t.r0, t.rl).transpose() * D.middleCols(t.c0, t.cl);
                    if (fold) st.S2[l - 1].block(t.r0, t.c0, t.rl, t.cl).array() *= d.array();
                    d.array() *= st.S1[l - 1].block(t.r0, t.c0, t.rl, t.cl).array();
                });
        }
    }

    // Forward half of the R-operator for directions g0 .. g0 + mg - 1 of V:
    // RZ_l and RA_l, one column block of st.cols per direction; sizes RD.
    void r_forward(const double* p, const Matrix& V, Index g0, Index mg, const StridedMap& X0,
                   const State& st, MLPDirectionWork& w) const
    {
        const Index nc = st.cols, nl = static_cast<Index>(m_layers.size());
        resize_all(w.RZ, m_layers, mg * nc, false);
        resize_all(w.RA, m_layers, mg * nc, true);
        resize_all(w.RD, m_layers, mg * nc, false);
        const auto dir = [&](Index j) { return V.col(g0 + j).data(); };

        for (Index l = 0; l < nl; ++l) {
            const MLPLayer& L = m_layers[static_cast<size_t>(l)];
            const RowMap W = MLPLayout::weight(p, L);
            const StridedMap in = layer_input(X0, st.A, static_cast<size_t>(l));
            run_tiles(Tiling(L.out, nc, mg, 2 * L.in), [&](const Tile& t) {
                const Index jc = t.group * nc;
                auto r = w.RZ[l].block(t.r0, jc + t.c0, t.rl, t.cl);
                r.noalias() =
                    MLPLayout::weight(dir(t.group), L).middleRows(t.r0, t.rl) * in.middleCols(t.c0, t.cl);
                if (l > 0) r.noalias() += W.middleRows(t.r0, t.rl) * w.RA[l - 1].middleCols(jc + t.c0, t.cl);
                if (L.b_offset >= 0)
                    r.colwise() += Eigen::Map<const Vector>(dir(t.group) + L.b_offset + t.r0, t.rl);
                if (L.hidden)
                    w.RA[l].block(t.r0, jc + t.c0, t.rl, t.cl) =
                        st.S1[l].block(t.r0, t.c0, t.rl, t.cl).cwiseProduct(r);
            });
        }
    }

    // Reverse half of the R-operator from R delta at the output (w.RD.back());
    // adds H V for those directions into columns g0 .. g0 + mg - 1 of acc.
    void r_backward(const double* p, const Matrix& V, Index g0, Index mg, const StridedMap& X0,
                    const State& st, MLPDirectionWork& w, Matrix& acc) const
    {
        const Index nc = st.cols, nl = static_cast<Index>(m_layers.size());
        const auto dir = [&](Index j) { return V.col(g0 + j).data(); };
        for (Index l = nl; l-- > 0;) {
            const MLPLayer& L = m_layers[static_cast<size_t>(l)];
            const RowMap W = MLPLayout::weight(p, L);
            const StridedMap in = layer_input(X0, st.A, static_cast<size_t>(l));
            const Matrix& RD = w.RD[l];
            run_tiles(
                Tiling(L.out, L.in, mg, 2 * nc),
                [&](const Tile& t) {
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
                Tiling(l > 0 ? L.in : 0, nc, mg, 2 * L.out),
                [&](const Tile& t) {
                    const Index jc = t.group * nc;
                    auto rd = w.RD[l - 1].block(t.r0, jc + t.c0, t.rl, t.cl);
                    rd.noalias() = MLPLayout::weight(dir(t.group), L).middleCols(t.r0, t.rl).transpose() *
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

    // Forward half of the third-derivative pass along u: Z (into st.A), RZ, QZ,
    // RA, QA and sigma' .. sigma''' (st was allocated with order 3); sizes the adjoints.
    void third_forward(const double* p, const double* u, const StridedMap& X0, State& st,
                       MLPDirectionWork& w) const
    {
        const Index nc = st.cols, nl = static_cast<Index>(m_layers.size());
        for (auto* list : {&w.RZ, &w.QZ, &w.Zb, &w.RZb, &w.QZb}) resize_all(*list, m_layers, nc, false);
        for (auto* list : {&w.RA, &w.QA}) resize_all(*list, m_layers, nc, true);

        for (Index l = 0; l < nl; ++l) {
            const MLPLayer& L = m_layers[static_cast<size_t>(l)];
            const RowMap W = MLPLayout::weight(p, L), U = MLPLayout::weight(u, L);
            const StridedMap in = layer_input(X0, st.A, static_cast<size_t>(l));
            run_tiles(Tiling(L.out, nc, 1, 5 * L.in), [&](const Tile& t) {
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
    }

    // Reverse half of the third-derivative pass from the output adjoints
    // (w.Zb, w.RZb, w.QZb .back()); adds grad_theta (u^T H u) into acc.
    void third_backward(const double* p, const double* u, const StridedMap& X0, const State& st,
                        MLPDirectionWork& w, Vector& acc) const
    {
        const Index nc = st.cols, nl = static_cast<Index>(m_layers.size());
        for (Index l = nl; l-- > 0;) {
            const MLPLayer& L = m_layers[static_cast<size_t>(l)];
            const RowMap W = MLPLayout::weight(p, L), U = MLPLayout::weight(u, L);
            const StridedMap in = layer_input(X0, st.A, static_cast<size_t>(l));
            const Matrix &Zb = w.Zb[l], &RZb = w.RZb[l], &QZb = w.QZb[l];
            run_tiles(
                Tiling(L.out, L.in, 1, 3 * nc),
                [&](const Tile& t) {
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
                Tiling(l > 0 ? L.in : 0, nc, 1, 5 * L.out),
                [&](const Tile& t) {
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

    // The input of layer l: the data chunk or the previous activations (public: the output
    // Jacobian of MLP walks the layers itself).
    static StridedMap layer_input(const StridedMap& X0, const std::vector<Matrix>& A, size_t l)
    {
        if (l == 0) return X0;
        const Matrix& a = A[l - 1];
        return StridedMap(a.data(), a.rows(), a.cols(), Eigen::OuterStride<>(a.rows()));
    }

private:
    const std::vector<MLPLayer>& m_layers;
    Activation m_act;
};

}  // namespace detail

}  // namespace eosfast
