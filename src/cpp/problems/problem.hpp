// The problem concept: a twice (ideally three times) differentiable loss
// L: R^dim -> R. Results go into caller-provided buffers. Every solver,
// optimizer and the trajectory runner works through this interface only.
#pragma once

#include <memory>
#include <string>

#include "../core/errors.hpp"
#include "../core/linear_operator.hpp"
#include "../core/types.hpp"

namespace eosfast {

class Problem {
public:
    virtual ~Problem() = default;

    virtual Index dim() const = 0;
    virtual std::string name() const = 0;

    virtual double loss(ConstVecRef x) const = 0;
    // Returns L(x) and writes grad L(x) into g.
    virtual double loss_and_grad(ConstVecRef x, VecRef g) const = 0;
    virtual void grad(ConstVecRef x, VecRef g) const { loss_and_grad(x, g); }
    // HV = grad^2 L(x) V for a block V of shape (dim, m); m = 1 is one vector.
    virtual void hvp(ConstVecRef x, ConstMatRef V, MatRef HV) const = 0;
    // out = grad_x (u^T grad^2 L(x) u), the third-derivative product grad^3 L(x)[u, u].
    virtual void third(ConstVecRef x, ConstVecRef u, VecRef out) const = 0;

    // False when hvp (third) is a finite-difference approximation.
    virtual bool exact_hvp() const { return true; }
    virtual bool exact_third() const { return true; }
    // False when the methods may only be called from the thread that owns the
    // problem (Python callbacks); such problems are also exempt from the
    // bitwise determinism rule.
    virtual bool thread_safe() const { return true; }

    // The Hessian at x as an operator (SharedProblem's by default). Problems
    // override it to cache work shared by every product at the same point
    // (e.g. an MLP's forward pass).
    virtual std::shared_ptr<LinearOperator> hessian(ConstVecRef x) const = 0;

    void check_dim(ConstVecRef x, const char* what = "x") const
    {
        if (x.size() == dim()) return;  // the message is only built on failure
        require(false, std::string(what) + " has length " + std::to_string(x.size()) +
                           ", expected dim = " + std::to_string(dim()));
    }
};

// grad^2 L(x) through Problem::hvp; keeps the problem alive.
class HessianOperator : public LinearOperator {
public:
    HessianOperator(std::shared_ptr<const Problem> problem, ConstVecRef x)
        : m_problem(std::move(problem)), m_x(x)
    {
    }
    Index rows() const override { return m_x.size(); }
    void apply(ConstMatRef V, MatRef out) const override { m_problem->hvp(m_x, V, out); }
    bool thread_safe() const override { return m_problem->thread_safe(); }
    const Vector& point() const { return m_x; }

private:
    std::shared_ptr<const Problem> m_problem;
    Vector m_x;
};

// Problems are owned through shared_ptr so an operator can outlive the caller's handle.
class SharedProblem : public Problem, public std::enable_shared_from_this<SharedProblem> {
public:
    std::shared_ptr<LinearOperator> hessian(ConstVecRef x) const override
    {
        check_dim(x);
        return std::make_shared<HessianOperator>(shared_from_this(), x);
    }
};

}  // namespace eosfast
