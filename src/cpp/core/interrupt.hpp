// Cooperative interruption of long loops. The host (the Python bindings)
// installs a checker; the core calls check_interrupt() from its outer loops,
// never inside a parallel region. The checker is rate-limited here so that
// loops may call it every iteration at the cost of one clock read.
#pragma once

#include <chrono>
#include <functional>

#include "errors.hpp"

namespace eosfast {

namespace detail {
struct InterruptState {
    std::function<bool()> checker;  // returns true when the host wants to stop
    std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
};
inline InterruptState& interrupt_state()
{
    thread_local InterruptState state;
    return state;
}
}  // namespace detail

// Installs `checker` for the calling thread for the lifetime of the guard.
class InterruptScope {
public:
    explicit InterruptScope(std::function<bool()> checker)
        : m_previous(std::move(detail::interrupt_state().checker))
    {
        detail::interrupt_state().checker = std::move(checker);
    }
    ~InterruptScope() { detail::interrupt_state().checker = std::move(m_previous); }
    InterruptScope(const InterruptScope&) = delete;
    InterruptScope& operator=(const InterruptScope&) = delete;

private:
    std::function<bool()> m_previous;
};

// Throws Interrupted when the host asks to stop; polls at most every 20 ms.
inline void check_interrupt()
{
    auto& state = detail::interrupt_state();
    if (!state.checker) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - state.last < std::chrono::milliseconds(20)) return;
    state.last = now;
    if (state.checker()) throw Interrupted();
}

}  // namespace eosfast
