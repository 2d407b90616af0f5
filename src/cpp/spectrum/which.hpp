// Which end of the spectrum a solver wants: the selection rules of ARPACK's
// `which` (Lehoucq, Sorensen & Yang 1998, sec. 4.2) for symmetric problems.
// SM (smallest magnitude) is not an end of the spectrum: eigsh finds it as the
// bottom end of H^2 (see eigsh.hpp); the rules below only order its values.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "../core/errors.hpp"
#include "../core/types.hpp"

namespace eosfast {

enum class Which { LA, SA, LM, BE, SM };

inline Which parse_which(const std::string& name)
{
    if (name == "LA") return Which::LA;
    if (name == "SA") return Which::SA;
    if (name == "LM") return Which::LM;
    if (name == "BE") return Which::BE;
    if (name == "SM") return Which::SM;
    throw std::invalid_argument("which must be one of 'LA', 'SA', 'LM', 'BE', 'SM', got '" + name + "'");
}

// Indices of `count` values of `values` (any order) in order of preference:
// LA largest first, SA smallest first, LM largest |value| first, SM smallest
// |value| first, BE alternating
// largest, smallest, second largest, ... (so ceil(count/2) from the top).
// Ties are broken by index, so the selection is deterministic.
inline std::vector<Index> select_wanted(const Vector& values, Index count, Which which)
{
    const Index n = values.size();
    count = std::min(count, n);
    std::vector<Index> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), Index(0));
    auto by = [&](auto key) {
        std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return key(a) > key(b); });
    };
    switch (which) {
        case Which::LA:
            by([&](Index i) { return values[i]; });
            break;
        case Which::SA:
            by([&](Index i) { return -values[i]; });
            break;
        case Which::LM:
            by([&](Index i) { return std::abs(values[i]); });
            break;
        case Which::SM:
            by([&](Index i) { return -std::abs(values[i]); });
            break;
        case Which::BE: {
            by([&](Index i) { return values[i]; });
            std::vector<Index> alternating;
            for (Index lo = 0, hi = n - 1; lo <= hi;) {
                alternating.push_back(order[static_cast<size_t>(lo++)]);
                if (lo <= hi) alternating.push_back(order[static_cast<size_t>(hi--)]);
            }
            order.swap(alternating);
            break;
        }
    }
    order.resize(static_cast<size_t>(count));
    return order;
}

// The order in which results are returned: LA descending, SA ascending, LM by
// descending magnitude, SM by ascending magnitude, BE descending.
inline std::vector<Index> result_order(const Vector& values, Which which)
{
    if (which == Which::BE) return select_wanted(values, values.size(), Which::LA);
    return select_wanted(values, values.size(), which);
}

// How far a candidate value at the top (top = true) or bottom end of a spectrum
// beats the worst of the k selected `values` under `which`: positive when it
// would displace one of them. -inf when that end cannot compete.
inline double competing_margin(const Vector& values, Which which, double candidate, bool top)
{
    const double none = -std::numeric_limits<double>::infinity();
    if (values.size() == 0) return std::numeric_limits<double>::infinity();
    switch (which) {
        case Which::LA:
            return top ? candidate - values.minCoeff() : none;
        case Which::SA:
            return top ? none : values.maxCoeff() - candidate;
        case Which::LM:
            return std::abs(candidate) - values.cwiseAbs().minCoeff();
        case Which::SM:
            return values.cwiseAbs().maxCoeff() - std::abs(candidate);
        default: {
            // BE keeps ceil(k/2) from the top and floor(k/2) from the bottom.
            const Index k = values.size(), high = (k + 1) / 2;
            Vector sorted = values;
            std::sort(sorted.data(), sorted.data() + k);
            if (top) return candidate - sorted[k - high];
            return k - high > 0 ? sorted[k - high - 1] - candidate : none;
        }
    }
}

}  // namespace eosfast
