// Shared glue of the binding files: GIL release with Ctrl-C polling, and the
// conversions every binding needs. Nothing numerical lives here.
#pragma once

#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <functional>
#include <string>

#include "../core/interrupt.hpp"
#include "../core/types.hpp"

namespace eosfast::bindings {

namespace py = pybind11;

// Holds the Python error raised by a signal handler while the core ran.
class SignalPoller {
public:
    SignalPoller() = default;
    SignalPoller(const SignalPoller&) = delete;
    SignalPoller& operator=(const SignalPoller&) = delete;
    ~SignalPoller() { clear(); }

    // Called by the core from the thread that released the GIL.
    std::function<bool()> checker()
    {
        return [this] {
            py::gil_scoped_acquire gil;
            if (PyErr_CheckSignals() == 0) return false;
            PyErr_Fetch(&m_type, &m_value, &m_traceback);
            return true;
        };
    }

    bool interrupted() const { return m_type != nullptr; }

    // Re-raises the stored error (normally KeyboardInterrupt). GIL held.
    [[noreturn]] void raise()
    {
        if (!m_type)
            PyErr_SetNone(PyExc_KeyboardInterrupt);
        else
            PyErr_Restore(m_type, m_value, m_traceback);
        m_type = m_value = m_traceback = nullptr;
        throw py::error_already_set();
    }

    // Drops the stored error (the caller reports the interruption itself).
    void clear()
    {
        if (!m_type) return;
        py::gil_scoped_acquire gil;
        Py_XDECREF(m_type);
        Py_XDECREF(m_value);
        Py_XDECREF(m_traceback);
        m_type = m_value = m_traceback = nullptr;
    }

private:
    PyObject* m_type = nullptr;
    PyObject* m_value = nullptr;
    PyObject* m_traceback = nullptr;
};

// Runs body() with the GIL released and Ctrl-C polled by the core's loops;
// an interruption surfaces as the KeyboardInterrupt the handler raised.
template <class Body>
auto call_released(Body&& body) -> decltype(body())
{
    SignalPoller poller;
    try {
        py::gil_scoped_release release;
        InterruptScope scope(poller.checker());
        return body();
    } catch (const Interrupted&) {
        poller.raise();
    }
}

// A fresh float64 numpy copy of a vector, handed to Python callables.
// (A copy, not a view: callbacks that keep their argument must not see it change.)
inline py::array_t<double> to_numpy(ConstVecRef v)
{
    py::array_t<double> out(v.size());
    std::copy(v.data(), v.data() + v.size(), out.mutable_data());
    return out;
}

// Converts a callable's result to a float64 vector of length n, or raises
// ValueError naming the callable.
// Refuses complex results: converting them to float64 would drop the
// imaginary part silently.
inline void require_real(const py::handle& result, const std::string& what)
{
    bool complex_values = PyComplex_Check(result.ptr());
    if (!complex_values && !py::isinstance<py::str>(result) && !py::isinstance<py::bytes>(result)) {
        py::array a;
        try {
            a = py::array::ensure(result);
        } catch (py::error_already_set&) {
            a = py::array();
        }
        complex_values = a && a.dtype().kind() == 'c';
    }
    if (complex_values)
        throw py::value_error(what + " returned complex values; return real (float64) values");
}

inline void from_numpy(const py::handle& result, Index n, VecRef out, const std::string& what)
{
    require_real(result, what);
    py::array_t<double, py::array::forcecast> a;
    try {
        a = py::array_t<double, py::array::forcecast>::ensure(result);
    } catch (py::error_already_set&) {
        a = py::array_t<double, py::array::forcecast>();
    }
    if (!a || a.ndim() != 1 || a.shape(0) != n) {
        std::string shape = "not an array";
        if (py::isinstance<py::array>(result))
            shape = py::str(result.attr("shape")).cast<std::string>();
        else if (a)
            shape = py::str(a.attr("shape")).cast<std::string>();
        throw py::value_error(what + " returned an array of shape " + shape + ", expected (" +
                              std::to_string(n) + ",)");
    }
    auto view = a.unchecked<1>();
    for (Index i = 0; i < n; ++i) out[i] = view(i);
}

// A fresh float64 numpy copy of a block of shape (rows, cols), Fortran order
// (the layout of the core's blocks), handed to Python callables.
inline py::array_t<double, py::array::f_style> block_to_numpy(ConstMatRef V)
{
    py::array_t<double, py::array::f_style> out({V.rows(), V.cols()});
    std::copy(V.data(), V.data() + V.size(), out.mutable_data());
    return out;
}

// Converts a callable's result to a float64 block of shape (rows, cols), any
// memory order, or raises ValueError naming the callable.
inline void block_from_numpy(const py::handle& result, Index rows, Index cols, MatRef out,
                             const std::string& what)
{
    require_real(result, what);
    py::array_t<double, py::array::forcecast> a;
    try {
        a = py::array_t<double, py::array::forcecast>::ensure(result);
    } catch (py::error_already_set&) {
        a = py::array_t<double, py::array::forcecast>();
    }
    if (!a || a.ndim() != 2 || a.shape(0) != rows || a.shape(1) != cols) {
        std::string shape = "not an array";
        if (py::isinstance<py::array>(result))
            shape = py::str(result.attr("shape")).cast<std::string>();
        else if (a)
            shape = py::str(a.attr("shape")).cast<std::string>();
        throw py::value_error(what + " returned an array of shape " + shape + ", expected (" +
                              std::to_string(rows) + ", " + std::to_string(cols) + ")");
    }
    auto view = a.unchecked<2>();
    for (Index j = 0; j < cols; ++j)
        for (Index i = 0; i < rows; ++i) out(i, j) = view(i, j);
}

}  // namespace eosfast::bindings
