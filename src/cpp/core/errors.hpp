// Exceptions of the core. std::invalid_argument marks bad input (ValueError in
// Python); NumericalError marks a numerical failure (eosfast.NumericalError);
// Interrupted unwinds a long loop after the host asked it to stop (Ctrl-C).
#pragma once

#include <stdexcept>
#include <string>

namespace eosfast {

class NumericalError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Interrupted : public std::runtime_error {
public:
    Interrupted() : std::runtime_error("interrupted") {}
};

inline void require(bool condition, const std::string& message)
{
    if (!condition) throw std::invalid_argument(message);
}

}  // namespace eosfast
