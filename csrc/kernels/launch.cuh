// Launch geometry shared by the CUDA drivers.
#pragma once
#include <cstdint>

namespace poisonkit {

// Blocks of `threads` threads covering n elements, one thread each.
inline int64_t blocks_for(int64_t n, int threads) { return (n + threads - 1) / threads; }

// CUDA grids hold at most 65,535 blocks along y and z: a per-sample grid dimension is
// capped there and the kernel loops over the rest (gridDim.y stride).
constexpr unsigned kMaxGridY = 65535;
inline unsigned grid_y_for(int64_t n) {
  return static_cast<unsigned>(n < kMaxGridY ? n : kMaxGridY);
}

}  // namespace poisonkit
