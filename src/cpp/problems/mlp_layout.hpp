// The parameter layout of a fully connected network: theta is the
// concatenation over layers of W_l (out, in) in row-major order, then b_l,
// which is torch.nn.utils.parameters_to_vector of a stack of nn.Linear.
#pragma once

#include <string>
#include <vector>

#include "../core/errors.hpp"
#include "../core/types.hpp"

namespace eosfast {

struct MLPLayer {
    Index in, out;
    Index w_offset;  // W_l (out, in), row-major, at theta[w_offset]
    Index b_offset;  // b_l at theta[b_offset]; -1 without bias
    bool hidden;     // followed by the activation
};

class MLPLayout {
public:
    using RowMap = Eigen::Map<const RowMatrix>;
    using MutRowMap = Eigen::Map<RowMatrix>;

    // Layers input_dim -> hidden[0] -> ... -> output_dim.
    MLPLayout(Index input_dim, const std::vector<Index>& hidden, Index output_dim, bool bias)
    {
        Index in = input_dim, offset = 0;
        for (size_t l = 0; l <= hidden.size(); ++l) {
            const bool is_hidden = l < hidden.size();
            const Index out = is_hidden ? hidden[l] : output_dim;
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
    }

    const std::vector<MLPLayer>& layers() const { return m_layers; }
    Index dim() const { return m_dim; }

    // W_l inside the parameter vector (or a direction) p.
    static RowMap weight(const double* p, const MLPLayer& L) { return RowMap(p + L.w_offset, L.out, L.in); }
    static MutRowMap weight(double* p, const MLPLayer& L) { return MutRowMap(p + L.w_offset, L.out, L.in); }

private:
    std::vector<MLPLayer> m_layers;
    Index m_dim = 0;
};

}  // namespace eosfast
