// The names of the optimizers, declared once: the class name (C++, the Python
// API, trajectories and checkpoints), the word of a run configuration
// ([optimizer] type), the word of the flow layer (eosfast.flow's algorithm),
// a title for reports, and the EoS indicators the optimizer defines (the
// fields of EosIndicators it fills, named as the sharpness record columns).
// The bindings export the table as _core.OPTIMIZER_NAMES; every other spelling
// is derived from it.
#pragma once

#include <array>

namespace eosfast {

enum class OptimizerKind { GD, NormalizedGD, PowerLossGD, SqrtGD };

struct OptimizerNames {
    const char* name;    // the class name
    const char* config;  // [optimizer] type of a run configuration; "" when not configurable
    const char* flow;    // eosfast.flow's algorithm; "" without a limiting flow
    const char* title;   // for plots and reports
    std::array<const char*, 3> indicators;  // EoS indicators it defines, nullptr-padded
};

inline constexpr std::array<OptimizerNames, 4> kOptimizerNames{{
    {"GD", "gd", "", "GD", {nullptr, nullptr, nullptr}},
    {"NormalizedGD",
     "ngd",
     "ngd",
     "Normalized GD",
     {"inv_stableness_sum", "sqrt_loss_sum", "sqrt_loss_reference"}},
    {"PowerLossGD", "", "", "GD on (L - L_min)^p", {nullptr, nullptr, nullptr}},
    {"SqrtGD", "sqrtgd", "sqrt", "GD on sqrt(L)", {"sqrt_loss_sum", "sqrt_loss_reference", nullptr}},
}};

inline constexpr const OptimizerNames& optimizer_names(OptimizerKind kind)
{
    return kOptimizerNames[static_cast<size_t>(kind)];
}

}  // namespace eosfast
