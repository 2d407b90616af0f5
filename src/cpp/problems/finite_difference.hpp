// Derivatives a problem does not provide, from central differences of the
// ones it does. Used for Python-callback problems without exact hvp/third.
//
//  hvp:   H v ~ (g(x + h v) - g(x - h v)) / (2 h),       h = eps^(1/3) max(1, |x|) / |v|
//         truncation O(h^2 |grad^3 L|), about 1e-10 relative for smooth losses.
//  third: with an hvp, grad^3 L[u, u] ~ (H(x + h u) u - H(x - h u) u) / (2 h)   (h as above);
//         from gradients only, the fourth-order second difference
//         (-g(x+2hu) + 16 g(x+hu) - 30 g(x) + 16 g(x-hu) - g(x-2hu)) / (12 h^2),
//         h = eps^(1/6) max(1, |x|) / |u|, about 1e-8 relative.
#pragma once

#include <cmath>
#include <limits>

#include "../core/vector_ops.hpp"
#include "problem.hpp"

namespace eosfast {

namespace detail {
inline double difference_step(ConstVecRef x, ConstVecRef v, double power)
{
    const double vn = norm(v);
    const double eps = std::numeric_limits<double>::epsilon();
    return vn == 0.0 ? 0.0 : std::pow(eps, power) * std::max(1.0, norm(x)) / vn;
}

// out = (f(x + h v) - f(x - h v)) / (2 h), f(y, out) writing a vector function
// of y into out; zero when v = 0.
template <class F>
void central_difference(F&& f, ConstVecRef x, ConstVecRef v, double power, VecRef out)
{
    const double h = difference_step(x, v, power);
    if (h == 0.0) {
        out.setZero();
        return;
    }
    Vector xp = x + h * v, fp(x.size());
    f(xp, fp);
    xp = x - h * v;
    f(xp, out);
    out = (fp - out) / (2.0 * h);
}
}  // namespace detail

// H v for one vector by central differences of `grad`.
template <class Grad>
void finite_difference_hvp(Grad&& grad, ConstVecRef x, ConstVecRef v, VecRef out)
{
    detail::central_difference(grad, x, v, 1.0 / 3.0, out);
}

// grad^3 L(x)[u, u] by central differences of H(.) u.
template <class Hvp>
void finite_difference_third_from_hvp(Hvp&& hvp, ConstVecRef x, ConstVecRef u, VecRef out)
{
    detail::central_difference([&](ConstVecRef y, VecRef o) { hvp(y, u, o); }, x, u, 1.0 / 3.0, out);
}

// grad^3 L(x)[u, u] = d^2/ds^2 grad L(x + s u) at s = 0, fourth order in h.
template <class Grad>
void finite_difference_third_from_grad(Grad&& grad, ConstVecRef x, ConstVecRef u, VecRef out)
{
    const double h = detail::difference_step(x, u, 1.0 / 6.0);
    if (h == 0.0) {
        out.setZero();
        return;
    }
    const Index n = x.size();
    Vector g(n), xs(n);
    static constexpr double kOffsets[5] = {-2, -1, 0, 1, 2};
    static constexpr double kWeights[5] = {-1, 16, -30, 16, -1};
    out.setZero();
    for (int i = 0; i < 5; ++i) {
        xs = x + (kOffsets[i] * h) * u;
        grad(xs, g);
        out += kWeights[i] * g;
    }
    out /= 12.0 * h * h;
}

}  // namespace eosfast
