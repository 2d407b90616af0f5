// The Hessian of an MLP at a point, with its cache: the forward pass and
// deltas of the first chunks (as many as fit in the MLP's cache budget) are
// computed once and shared by every product; products are bitwise equal to
// MLP::hvp. Included at the end of mlp.hpp.
#pragma once

#include <algorithm>
#include <memory>
#include <vector>

#include "mlp.hpp"

namespace eosfast {

class MLPHessian : public HessianOperator {
public:
    MLPHessian(std::shared_ptr<const MLP> mlp, ConstVecRef x)
        : HessianOperator(mlp, x), m_mlp(std::move(mlp)), m_cache(build_cache(*m_mlp, point()))
    {
    }
    void apply(ConstMatRef V, MatRef out) const override { m_mlp->hvp_cached(point(), V, out, m_cache); }
    Index cached_chunks() const { return static_cast<Index>(m_cache.size()); }

private:
    // The chunk states of the first chunks that fit in mlp.cache_bytes().
    static std::vector<MLP::State> build_cache(const MLP& mlp, const Vector& x)
    {
        const Index per_chunk = std::max<Index>(1, mlp.chunk_state_bytes());
        const Index fit = static_cast<Index>(mlp.cache_bytes() / static_cast<double>(per_chunk));
        std::vector<MLP::State> cache(
            static_cast<size_t>(std::min(mlp.chunk_count(), std::max<Index>(fit, 0))));
        for (size_t c = 0; c < cache.size(); ++c) {
            check_interrupt();
            mlp.chunk_state(x.data(), static_cast<Index>(c), cache[c]);
        }
        return cache;
    }

    std::shared_ptr<const MLP> m_mlp;
    std::vector<MLP::State> m_cache;
};

inline std::shared_ptr<LinearOperator> MLP::hessian(ConstVecRef x) const
{
    check_dim(x);
    return std::make_shared<MLPHessian>(std::static_pointer_cast<const MLP>(shared_from_this()), x);
}

}  // namespace eosfast
