// Elementwise activations of the MLP kernel and their derivatives up to order 3
// (order 3 is what grad_x (u^T H u) needs). Every value is the same whichever
// thread computes it and wherever it sits in a buffer: tanh goes through
// detail::tanh_kernel, plain arithmetic the compiler vectorises (the same
// operations in the vector body and the scalar tail; the build disables FMA
// contraction), the others through scalar libm calls.
//
//   tanh      t = tanh z:  s' = 1 - t^2, s'' = -2 t s', s''' = s' (4 t^2 - 2 s')
//   relu      max(z, 0):   s' = [z > 0], s'' = s''' = 0 (the almost-everywhere
//                          derivatives; at z = 0 exactly s' = 0, as in PyTorch)
//   gelu      z Phi(z) with Phi the normal CDF (exact, erf-based), phi its density:
//             s' = Phi + z phi, s'' = phi (2 - z^2), s''' = phi z (z^2 - 4)
//   softplus  log(1 + e^z), sigma = 1/(1 + e^-z), sc = 1 - sigma:
//             s' = sigma, s'' = sigma sc, s''' = sigma sc (sc - sigma)
//   silu      z sigma(z): s' = sigma (1 + z sc), s'' = sigma sc (2 + z (sc - sigma)),
//             s''' = sigma sc (3 (sc - sigma) + z ((sc - sigma)^2 - 2 sigma sc))
//   identity  z: s' = 1, s'' = s''' = 0
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "../core/errors.hpp"
#include "../core/types.hpp"

namespace eosfast {

enum class Activation { Tanh, ReLU, GELU, Softplus, SiLU, Identity };

// The names of the activations, in the order of the enum: the one list
// (exported as _core.ACTIVATIONS).
inline constexpr std::array<const char*, 6> kActivationNames{"tanh",     "relu", "gelu",
                                                             "softplus", "silu", "identity"};

inline Activation parse_activation(const std::string& name)
{
    std::string known;
    for (size_t i = 0; i < kActivationNames.size(); ++i) {
        if (name == kActivationNames[i]) return static_cast<Activation>(i);
        known += std::string(i ? ", '" : "'") + kActivationNames[i] + "'";
    }
    throw std::invalid_argument("activation must be one of " + known + ", got '" + name + "'");
}

inline std::string activation_name(Activation a) { return kActivationNames[static_cast<size_t>(a)]; }

namespace detail {

// sigma(z) and 1 - sigma(z), each without cancellation.
inline void sigmoid_pair(double z, double& s, double& sc)
{
    const double e = std::exp(-std::abs(z));
    const double inv = 1.0 / (1.0 + e);
    if (z >= 0) {
        s = inv;
        sc = e * inv;
    } else {
        s = e * inv;
        sc = inv;
    }
}

// exp(x) - 1 for x in [-50, 0], within 2 ulp: x = k ln2 + r with |r| <= ln2/2
// (Cody-Waite, ln2 split so k ln2 is exact), expm1(r) by its Taylor series to
// r^13 (remainder below 2^-60 |r|), then 2^k expm1(r) + (2^k - 1): both terms
// have the sign of x once k < 0, so the sum does not cancel (Tang, ACM TOMS
// 18(2), 1992, uses the same reconstruction). Branch-free, so loops over it
// vectorise; 2^k comes from the bits of the rounding shifter (k + 1023 in the
// exponent field), the trick vector exp implementations use.
inline double expm1_nonpositive(double x)
{
    constexpr double kLog2e = 1.4426950408889634074;
    constexpr double kLn2Hi = 6.93147180369123816490e-01;  // 32 bits: k * kLn2Hi is exact
    constexpr double kLn2Lo = 1.90821492927058770002e-10;
    constexpr double kShifter = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
    const double kd = x * kLog2e + kShifter;
    const double k = kd - kShifter;
    const double r = (x - k * kLn2Hi) - k * kLn2Lo;
    double p = 1.0 / 6227020800.0;  // 1/13!
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = r + (r * r) * p;
    std::uint64_t bits;
    std::memcpy(&bits, &kd, sizeof bits);
    bits = (bits + 1023u) << 52;  // the low bits of kd hold k; k + 1023 is the exponent of 2^k
    double scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return scale * p + (scale - 1.0);
}

// tanh z = -t / (t + 2) with t = expm1(-2|z|), signed as z: no cancellation
// near 0 and exactly +-1 once |z| > 19; within 3 ulp of the correctly rounded
// value (tests/test_mlp.py checks it against libm). NaN stays NaN. Loops over it
// vectorise (the build's -fno-trapping-math lets GCC turn the clamp into a blend).
inline double tanh_kernel(double z)
{
    double x = -2.0 * std::abs(z);
    x = x < -50.0 ? -50.0 : x;
    const double t = expm1_nonpositive(x);
    return std::copysign(-t / (t + 2.0), z);
}

struct Derivatives {
    double value, d1, d2, d3;
};

// Every activation but tanh (which activate() handles in its own loops).
inline Derivatives activation_derivatives(Activation act, double z)
{
    constexpr double kInvSqrt2 = 0.70710678118654752440;
    constexpr double kInvSqrt2Pi = 0.39894228040143267794;
    switch (act) {
        case Activation::Tanh:  // activate() evaluates tanh in loops that vectorise
            break;
        case Activation::ReLU:
            return {z > 0 ? z : 0.0, z > 0 ? 1.0 : 0.0, 0.0, 0.0};
        case Activation::GELU: {
            const double Phi = 0.5 * std::erfc(-z * kInvSqrt2);
            const double phi = kInvSqrt2Pi * std::exp(-0.5 * z * z);
            return {z * Phi, Phi + z * phi, phi * (2.0 - z * z), phi * z * (z * z - 4.0)};
        }
        case Activation::Softplus: {
            double s, sc;
            sigmoid_pair(z, s, sc);
            const double value = std::max(z, 0.0) + std::log1p(std::exp(-std::abs(z)));
            return {value, s, s * sc, s * sc * (sc - s)};
        }
        case Activation::SiLU: {
            double s, sc;
            sigmoid_pair(z, s, sc);
            const double q = s * sc, w = sc - s;
            return {z * s, s * (1.0 + z * sc), q * (2.0 + z * w), q * (3.0 * w + z * (w * w - 2.0 * q))};
        }
        case Activation::Identity:
            return {z, 1.0, 0.0, 0.0};
    }
    return {0, 0, 0, 0};
}

}  // namespace detail

// For n values z (overwritten by sigma(z)), writes the derivatives up to
// `order` into s1, s2, s3 (pointers past `order` may be null).
inline void activate(Activation act, int order, double* z, Index n, double* s1, double* s2, double* s3)
{
    if (act == Activation::Tanh) {
        // The derivatives of the table at the top of this file, in loops that vectorise.
        for (Index i = 0; i < n; ++i) z[i] = detail::tanh_kernel(z[i]);
        if (order >= 1)
            for (Index i = 0; i < n; ++i) s1[i] = 1.0 - z[i] * z[i];
        if (order >= 2)
            for (Index i = 0; i < n; ++i) s2[i] = -2.0 * z[i] * s1[i];
        if (order >= 3)
            for (Index i = 0; i < n; ++i) s3[i] = s1[i] * (4.0 * z[i] * z[i] - 2.0 * s1[i]);
        return;
    }
    for (Index i = 0; i < n; ++i) {
        const detail::Derivatives d = detail::activation_derivatives(act, z[i]);
        z[i] = d.value;
        if (order >= 1) s1[i] = d.d1;
        if (order >= 2) s2[i] = d.d2;
        if (order >= 3) s3[i] = d.d3;
    }
}

}  // namespace eosfast
