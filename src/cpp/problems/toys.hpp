// Toy landscapes with closed-form manifolds of minimisers (docs/theory.md, 7. Toy
// problems with closed forms):
//   ScalarProduct(D):  L = 1/2 (prod_i x_i - 1)^2
//   Valley2D:          L = (1 + x^2) y^2
//   TwoNormal:         L = 1/2 ((3 + sin x) y^2 + z^2)
//   Circle:            L = 1/2 (2 + cos theta) (r - 1)^2 in Cartesian (x, y)
// The fixed-dimension toys are written once as a loss template and
// differentiated exactly by truncated Taylor arithmetic: with
// L(x + s u + t w) = sum c_ab s^a t^b, grad L . w = c_01, u^T H w = c_11 and
// grad^3 L[u, u, w] = 2 c_21. ScalarProduct uses leave-one-out products, O(D).
#pragma once

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "problem.hpp"

namespace eosfast {

namespace detail {

// sum_{a <= 2, b <= 1} c[a][b] s^a t^b, truncated.
struct Jet {
    double c[3][2] = {{0, 0}, {0, 0}, {0, 0}};
    Jet() = default;
    Jet(double v) { c[0][0] = v; }  // NOLINT: constants mix with jets
};

inline Jet operator+(const Jet& f, const Jet& g)
{
    Jet h;
    for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 2; ++b) h.c[a][b] = f.c[a][b] + g.c[a][b];
    return h;
}
inline Jet operator*(const Jet& f, const Jet& g)
{
    Jet h;
    for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 2; ++b)
            for (int a1 = 0; a1 <= a; ++a1)
                for (int b1 = 0; b1 <= b; ++b1) h.c[a][b] += f.c[a1][b1] * g.c[a - a1][b - b1];
    return h;
}
inline Jet operator*(double k, const Jet& f)
{
    Jet h = f;
    for (auto& row : h.c)
        for (double& v : row) v *= k;
    return h;
}

inline Jet operator-(const Jet& f, const Jet& g) { return f + (-1.0) * g; }

// phi(g) from phi and its first three derivatives at g's constant term:
// phi(g0 + d) = phi0 + phi1 d + phi2 d^2 / 2 + phi3 d^3 / 6 (d^4 vanishes here).
inline Jet compose(const Jet& g, double f0, double f1, double f2, double f3)
{
    Jet d = g;
    d.c[0][0] = 0.0;
    const Jet d2 = d * d;
    return Jet(f0) + f1 * d + (0.5 * f2) * d2 + (f3 / 6.0) * (d2 * d);
}

inline double value(double v) { return v; }
inline double value(const Jet& j) { return j.c[0][0]; }
inline double sin_(double v) { return std::sin(v); }
inline double cos_(double v) { return std::cos(v); }
inline double sqrt_(double v) { return std::sqrt(v); }
inline Jet sin_(const Jet& g)
{
    const double s = std::sin(value(g)), c = std::cos(value(g));
    return compose(g, s, c, -s, -c);
}
inline Jet cos_(const Jet& g)
{
    const double s = std::sin(value(g)), c = std::cos(value(g));
    return compose(g, c, -s, -c, s);
}
inline Jet sqrt_(const Jet& g)
{
    const double r = std::sqrt(value(g));
    return compose(g, r, 0.5 / r, -0.25 / (r * r * r), 0.375 / (r * r * r * r * r));
}
inline Jet inverse(const Jet& g)
{
    const double v = value(g), i = 1.0 / v;
    return compose(g, i, -i * i, 2.0 * i * i * i, -6.0 * i * i * i * i);
}
inline double inverse(double v) { return 1.0 / v; }

}  // namespace detail

// A fixed-dimension toy: Derived provides `static constexpr Index kDim`,
// `template <class T> static T eval(const T* x)` and `check(x)`.
template <class Derived>
class JetToy : public SharedProblem {
public:
    Index dim() const override { return Derived::kDim; }

    double loss(ConstVecRef x) const override
    {
        check(x);
        return Derived::eval(x.data());
    }

    double loss_and_grad(ConstVecRef x, VecRef g) const override
    {
        check(x);
        for (Index k = 0; k < dim(); ++k) g[k] = expand(x, nullptr, k).c[0][1];
        return Derived::eval(x.data());
    }

    void hvp(ConstVecRef x, ConstMatRef V, MatRef HV) const override
    {
        check(x);
        require(V.rows() == dim(),
                "V has " + std::to_string(V.rows()) + " rows, expected dim = " + std::to_string(dim()));
        for (Index j = 0; j < V.cols(); ++j)
            for (Index k = 0; k < dim(); ++k) HV(k, j) = expand(x, V.col(j).data(), k).c[1][1];
    }

    void third(ConstVecRef x, ConstVecRef u, VecRef out) const override
    {
        check(x);
        check_dim(u, "u");
        for (Index k = 0; k < dim(); ++k) out[k] = 2.0 * expand(x, u.data(), k).c[2][1];
    }

private:
    void check(ConstVecRef x) const
    {
        check_dim(x);
        Derived::check(x);
    }

    // The Taylor coefficients of L(x + s u + t e_k).
    static detail::Jet expand(ConstVecRef x, const double* u, Index k)
    {
        detail::Jet p[Derived::kDim];
        for (Index i = 0; i < Derived::kDim; ++i) {
            p[i].c[0][0] = x[i];
            if (u) p[i].c[1][0] = u[i];
            if (i == k) p[i].c[0][1] = 1.0;
        }
        return Derived::eval(p);
    }
};

// L(x, y) = (1 + x^2) y^2.
class Valley2D : public JetToy<Valley2D> {
public:
    static constexpr Index kDim = 2;
    template <class T>
    static T eval(const T* p)
    {
        return (1.0 + p[0] * p[0]) * (p[1] * p[1]);
    }
    static void check(ConstVecRef) {}
    std::string name() const override { return "Valley2D"; }
};

// L(x, y, z) = 1/2 (a(x) y^2 + z^2), a(x) = 3 + sin x.
class TwoNormal : public JetToy<TwoNormal> {
public:
    static constexpr Index kDim = 3;
    template <class T>
    static T eval(const T* p)
    {
        using detail::sin_;
        return 0.5 * ((3.0 + sin_(p[0])) * (p[1] * p[1]) + p[2] * p[2]);
    }
    static void check(ConstVecRef) {}
    std::string name() const override { return "TwoNormal"; }
};

// L(x, y) = 1/2 a(theta) (r - 1)^2, a = 2 + cos theta = 2 + x / r. Undefined at r = 0.
class Circle : public JetToy<Circle> {
public:
    static constexpr Index kDim = 2;
    template <class T>
    static T eval(const T* p)
    {
        using detail::inverse;
        using detail::sqrt_;
        const T r = sqrt_(p[0] * p[0] + p[1] * p[1]);
        const T rm1 = r - 1.0;
        return 0.5 * ((2.0 + p[0] * inverse(r)) * (rm1 * rm1));
    }
    static void check(ConstVecRef x)
    {
        require(x[0] != 0.0 || x[1] != 0.0,
                "Circle is undefined at the origin (r = 0): theta has no value there");
    }
    std::string name() const override { return "Circle"; }
};

// L(x) = 1/2 (prod_i x_i - 1)^2 for x in R^D.
class ScalarProduct : public SharedProblem {
public:
    explicit ScalarProduct(Index D) : m_dim(D)
    {
        require(D >= 1, "D must be >= 1, got " + std::to_string(D));
    }
    Index dim() const override { return m_dim; }
    std::string name() const override { return "ScalarProduct(" + std::to_string(m_dim) + ")"; }

    double loss(ConstVecRef x) const override
    {
        check_dim(x);
        double p = 1.0;
        for (Index i = 0; i < m_dim; ++i) p *= x[i];
        return 0.5 * (p - 1.0) * (p - 1.0);
    }

    // grad_k = (p - 1) p_k with p_k = prod_{j != k} x_j = (prod_{j < k} x_j)(prod_{j > k} x_j),
    // the products of Expansion (the same roundings) without its allocations:
    // this is the GD-loop overhead benchmark's problem.
    double loss_and_grad(ConstVecRef x, VecRef g) const override
    {
        check_dim(x);
        double prefix = 1.0;
        for (Index k = 0; k < m_dim; ++k) {
            g[k] = prefix;
            prefix *= x[k];
        }
        double suffix = 1.0;
        for (Index k = m_dim; k-- > 0;) {
            g[k] *= suffix;
            suffix *= x[k];
        }
        const double r = prefix - 1.0;
        for (Index k = 0; k < m_dim; ++k) g[k] = r * g[k];
        return 0.5 * r * r;
    }

    // (H v)_k = p_k (grad p . v) + (p - 1) D p_k[v]
    void hvp(ConstVecRef x, ConstMatRef V, MatRef HV) const override
    {
        check_dim(x);
        require(V.rows() == m_dim,
                "V has " + std::to_string(V.rows()) + " rows, expected dim = " + std::to_string(m_dim));
        for (Index j = 0; j < V.cols(); ++j) {
            const Expansion e(x, V.col(j).data());
            for (Index k = 0; k < m_dim; ++k) HV(k, j) = e.loo[k][0] * e.full[1] + (e.p - 1.0) * e.loo[k][1];
        }
    }

    // With g(s) = prod (x_i + s u_i): u^T H u = g'(0)^2 + (p - 1) g''(0), whose
    // gradient is 2 g'(0) D p_k[u] + g''(0) p_k + (p - 1) D^2 p_k[u, u].
    void third(ConstVecRef x, ConstVecRef u, VecRef out) const override
    {
        check_dim(x);
        check_dim(u, "u");
        const Expansion e(x, u.data());
        for (Index k = 0; k < m_dim; ++k)
            out[k] = 2.0 * e.full[1] * e.loo[k][1] + 2.0 * e.full[2] * e.loo[k][0] +
                     (e.p - 1.0) * 2.0 * e.loo[k][2];
    }

private:
    using Poly = std::array<double, 3>;  // c0 + c1 s + c2 s^2
    static Poly times(const Poly& a, double x, double u)
    {
        return {a[0] * x, a[1] * x + a[0] * u, a[2] * x + a[1] * u};
    }

    // Taylor coefficients in s of prod_i (x_i + s u_i) and of each leave-one-out product.
    struct Expansion {
        Poly full;
        std::vector<Poly> loo;
        double p;
        Expansion(ConstVecRef x, const double* u)
        {
            const Index D = x.size();
            std::vector<Poly> prefix(static_cast<size_t>(D + 1)), suffix(static_cast<size_t>(D + 1));
            prefix[0] = suffix[static_cast<size_t>(D)] = Poly{1.0, 0.0, 0.0};
            for (Index i = 0; i < D; ++i) prefix[i + 1] = times(prefix[i], x[i], u ? u[i] : 0.0);
            for (Index i = D; i-- > 0;) suffix[i] = times(suffix[i + 1], x[i], u ? u[i] : 0.0);
            full = prefix[static_cast<size_t>(D)];
            p = full[0];
            loo.resize(static_cast<size_t>(D));
            for (Index k = 0; k < D; ++k) {
                const Poly &a = prefix[k], &b = suffix[k + 1];
                loo[k] = {a[0] * b[0], a[0] * b[1] + a[1] * b[0], a[0] * b[2] + a[1] * b[1] + a[2] * b[0]};
            }
        }
    };

    Index m_dim;
};

}  // namespace eosfast
