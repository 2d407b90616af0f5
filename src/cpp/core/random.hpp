// The core's internal random numbers: SplitMix64 (Steele, Lea & Flood 2014;
// the seeding generator of xoshiro), a 64-bit state advanced by a Weyl step
// and scrambled by a fixed mixer. It draws the random restarts of the
// eigensolvers; its whole state is one integer, so solver state saves and
// restores exactly. Fully specified here, so streams match across platforms.
// (Random numbers users see come from numpy's PCG64 in the Python layer.)
#pragma once

#include <cstdint>

#include "types.hpp"

namespace eosfast {

class SplitMix64 {
public:
    explicit SplitMix64(std::uint64_t seed = 0) : m_state(seed) {}

    std::uint64_t next()
    {
        std::uint64_t z = (m_state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }

    // Uniform on [-1, 1): the top 53 bits as a multiple of 2^-52, shifted.
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-52 - 1.0; }

    void fill_uniform(VecRef out)
    {
        for (Index i = 0; i < out.size(); ++i) out[i] = uniform();
    }

    std::uint64_t state() const { return m_state; }
    void set_state(std::uint64_t state) { m_state = state; }

private:
    std::uint64_t m_state;
};

}  // namespace eosfast
