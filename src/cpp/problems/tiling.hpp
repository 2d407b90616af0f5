// Fixed tilings of matrix products for the kernels. A product's output is cut
// into tiles whose shape depends only on the problem (never on the thread
// count); each tile is one single-threaded Eigen product, so every element is
// computed by the same operations in the same order for any number of threads
// (and whether or not the tiles run in parallel: parallel_for runs small
// products serially, as waking threads costs more than they do).
#pragma once

#include <algorithm>

#include "../core/parallel.hpp"

namespace eosfast::detail {

inline constexpr Index kTileRows = 128;
inline constexpr Index kTileCols = 128;

struct Tile {
    Index group;   // which of the `groups` repetitions (e.g. a direction of a block)
    Index r0, rl;  // row range
    Index c0, cl;  // column range within the group
};

// A (rows x cols) output repeated for `groups` groups, cut into fixed tiles;
// `inner` is the cost of one output element (for the serial/parallel choice).
struct Tiling {
    Index rows = 0, cols = 0, groups = 1, inner = 1;
    Index tile_rows = kTileRows, tile_cols = kTileCols;

    Tiling(Index rows_, Index cols_, Index groups_ = 1, Index inner_ = 1)
        : rows(rows_), cols(cols_), groups(groups_), inner(inner_)
    {
    }
    double work() const
    {
        return static_cast<double>(rows) * static_cast<double>(cols) * static_cast<double>(groups) *
               static_cast<double>(inner);
    }
    Index row_tiles() const { return (rows + tile_rows - 1) / tile_rows; }
    Index col_tiles() const { return (cols + tile_cols - 1) / tile_cols; }
    Index count() const { return rows == 0 || cols == 0 ? 0 : groups * row_tiles() * col_tiles(); }
    Tile operator()(Index t) const
    {
        const Index per_group = row_tiles() * col_tiles();
        const Index g = t / per_group, rest = t % per_group;
        const Index i = rest / col_tiles(), j = rest % col_tiles();
        const Index r0 = i * tile_rows, c0 = j * tile_cols;
        return {g, r0, std::min(tile_rows, rows - r0), c0, std::min(tile_cols, cols - c0)};
    }
};

// Runs body(tile) for every tile of `tiling`.
template <class Body>
void run_tiles(const Tiling& tiling, Body&& body)
{
    parallel_for(tiling.count(), tiling.work(), [&](Index t) { body(tiling(t)); });
}

// Two independent tiled products in one parallel region.
template <class Body1, class Body2>
void run_tiles(const Tiling& t1, Body1&& body1, const Tiling& t2, Body2&& body2)
{
    const Index n1 = t1.count();
    parallel_for(n1 + t2.count(), t1.work() + t2.work(), [&](Index t) {
        if (t < n1)
            body1(t1(t));
        else
            body2(t2(t - n1));
    });
}

}  // namespace eosfast::detail
