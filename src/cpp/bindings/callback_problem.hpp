// The one adapter from Python callables to the core's concepts: a problem
// defined by loss_and_grad (and optionally hvp, third), and an operator
// defined by v -> A v. Calls reacquire the GIL, run on the calling thread
// only, check what comes back, and let Python exceptions propagate unchanged.
#pragma once

#include "../problems/finite_difference.hpp"
#include "../problems/problem.hpp"
#include "common.hpp"

namespace eosfast::bindings {

// Python objects that may be released from a thread without the GIL.
class PyRef {
public:
    PyRef() = default;
    explicit PyRef(py::object obj) : m_obj(std::move(obj)) {}
    PyRef(const PyRef&) = delete;
    PyRef& operator=(const PyRef&) = delete;
    ~PyRef()
    {
        if (!m_obj) return;
        py::gil_scoped_acquire gil;
        m_obj = py::object();
    }
    bool present() const { return m_obj && !m_obj.is_none(); }
    const py::object& get() const { return m_obj; }

private:
    py::object m_obj;
};

class CallbackProblem : public SharedProblem {
public:
    // With block_hvp, hvp is called once per block as (x, V) with V of shape
    // (dim, m) and must return H V of shape (dim, m); otherwise once per column.
    CallbackProblem(py::object loss_and_grad, Index dim, py::object hvp, py::object third,
                    bool block_hvp = false)
        : m_loss_and_grad(std::move(loss_and_grad)),
          m_hvp(std::move(hvp)),
          m_third(std::move(third)),
          m_dim(dim),
          m_block_hvp(block_hvp)
    {
        require(dim >= 1, "dim must be at least 1");
        require(!block_hvp || m_hvp.present(), "block_hvp needs an hvp callable");
    }

    bool block_hvp() const { return m_block_hvp; }

    Index dim() const override { return m_dim; }
    std::string name() const override { return "Callback"; }
    bool exact_hvp() const override { return m_hvp.present(); }
    bool exact_third() const override { return m_third.present(); }
    bool thread_safe() const override { return false; }

    double loss(ConstVecRef x) const override
    {
        Vector g(m_dim);
        return loss_and_grad(x, g);
    }

    double loss_and_grad(ConstVecRef x, VecRef g) const override
    {
        check_dim(x);
        py::gil_scoped_acquire gil;
        py::object result = m_loss_and_grad.get()(to_numpy(x));
        if (!py::isinstance<py::tuple>(result) || py::len(result) != 2)
            throw py::value_error("loss_and_grad must return a tuple (loss, grad)");
        auto pair = result.cast<py::tuple>();
        double value;
        require_real(pair[0], "loss_and_grad (loss)");
        try {
            value = pair[0].cast<double>();
        } catch (const py::cast_error&) {
            throw py::value_error("loss_and_grad returned a loss that is not a real number");
        }
        from_numpy(pair[1], m_dim, g, "loss_and_grad (gradient)");
        return value;
    }

    void hvp(ConstVecRef x, ConstMatRef V, MatRef HV) const override
    {
        check_dim(x);
        require(V.rows() == m_dim, "V has " + std::to_string(V.rows()) + " rows, expected dim");
        if (m_block_hvp) {
            if (V.cols() == 0) return;
            py::gil_scoped_acquire gil;
            block_from_numpy(m_hvp.get()(to_numpy(x), block_to_numpy(V)), m_dim, V.cols(), HV, "hvp");
            return;
        }
        for (Index j = 0; j < V.cols(); ++j) {
            Vector out(m_dim);
            hvp_one(x, V.col(j), out);
            HV.col(j) = out;
        }
    }

    void third(ConstVecRef x, ConstVecRef u, VecRef out) const override
    {
        check_dim(x);
        check_dim(u, "u");
        if (m_third.present()) {
            py::gil_scoped_acquire gil;
            from_numpy(m_third.get()(to_numpy(x), to_numpy(u)), m_dim, out, "third");
        } else if (m_hvp.present()) {
            finite_difference_third_from_hvp(
                [this](ConstVecRef y, ConstVecRef v, VecRef o) { hvp_one(y, v, o); }, x, u, out);
        } else {
            finite_difference_third_from_grad([this](ConstVecRef y, VecRef o) { loss_and_grad(y, o); }, x, u,
                                              out);
        }
    }

private:
    void hvp_one(ConstVecRef x, ConstVecRef v, VecRef out) const
    {
        if (m_hvp.present() && m_block_hvp) {
            Matrix V = v;
            Matrix HV(m_dim, 1);
            hvp(x, V, HV);
            out = HV.col(0);
        } else if (m_hvp.present()) {
            py::gil_scoped_acquire gil;
            from_numpy(m_hvp.get()(to_numpy(x), to_numpy(v)), m_dim, out, "hvp");
        } else {
            finite_difference_hvp([this](ConstVecRef y, VecRef o) { loss_and_grad(y, o); }, x, v, out);
        }
    }

    PyRef m_loss_and_grad, m_hvp, m_third;
    Index m_dim;
    bool m_block_hvp;
};

// A Python v -> A v, optionally with a block form V -> A V (a LinearOperator's
// matmat, a sparse matrix's product), used for blocks of more than one vector.
class CallableOperator : public LinearOperator {
public:
    CallableOperator(py::object matvec, Index dim, py::object matmat = py::none())
        : m_matvec(std::move(matvec)), m_matmat(std::move(matmat)), m_dim(dim)
    {
        require(dim >= 1, "the operator's dimension must be at least 1");
    }
    Index rows() const override { return m_dim; }
    bool thread_safe() const override { return false; }
    void apply(ConstMatRef V, MatRef out) const override
    {
        py::gil_scoped_acquire gil;
        if (m_matmat.present() && V.cols() > 1) {
            block_from_numpy(m_matmat.get()(block_to_numpy(V)), m_dim, V.cols(), out, "the operator's matmat");
            return;
        }
        for (Index j = 0; j < V.cols(); ++j) {
            Vector col(m_dim);
            from_numpy(m_matvec.get()(to_numpy(V.col(j))), m_dim, col, "the operator's matvec");
            out.col(j) = col;
        }
    }

private:
    PyRef m_matvec, m_matmat;
    Index m_dim;
};

}  // namespace eosfast::bindings
