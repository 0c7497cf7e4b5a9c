// Frequency low-pass in a real orthonormal basis (DCT-II or the real Fourier basis), per
// channel: out = R^T (M o (R X C^T)) C, where R (rank_h x H) and C (rank_w x W) hold the
// kept basis rows of each axis and M (rank_h x rank_w) is an optional 0/1 mask over the
// kept coefficients (the disk shapes; none for the square ones). With no mask this is the
// separable projector out = P_H X P_W^T, P = R^T R, computed in its factored form: two
// rank-r products per axis instead of two n x n ones (2.8x fewer flops at 32x32, keep 0.3).
//
// The basis rows are built (and cached) by the caller; this file only does the products.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common.h"

namespace poisonkit {

// Geometry and options of one lowpass call; identical for every image of a batch.
struct LowpassParams {
  int channels = 0;  // C
  int height = 0;    // H
  int width = 0;     // W
  int rank_h = 0;    // kept basis rows along H (rows of R)
  int rank_w = 0;    // kept basis rows along W (rows of C)
  bool masked = false;  // apply M to the rank_h x rank_w coefficients
  bool clamp = true;    // float output: clamp to [0,1] (uint8 output always saturates)

  // uint8 output rounds to nearest.
  PK_HD StoreMode store() const { return StoreMode{0.5f, clamp}; }
};

// Sum over t < k of a[t * sa] * b[t * sb] (b in [0,1] units): one entry of a product.
template <typename B>
PK_HD float contract(const float* a, int64_t sa, const B* b, int64_t sb, int k) {
  float acc = 0.0f;
  for (int t = 0; t < k; ++t) acc += a[t * sa] * to_unit(b[t * sb]);
  return acc;
}

// ---- CPU driver (lowpass_cpu.cpp). A plan holds the basis matrices in the layouts the
// CPU products want; build it once per call, then run one image per call (torch inside
// at::parallel_for, DALI on its thread pool), each thread with its own scratch.
//
// The H-axis products (the costly ones) are folded in half: every DCT row is even or odd
// under i <-> H-1-i, every Fourier row under i <-> -i mod H. With X+ = X_i + X_mirror(i) and
// X- = X_i - X_mirror(i) over half the rows, R X = [R_even X+ ; R_odd X-] and the output rows
// i, mirror(i) are E +- O with E = R_even^T V_even, O = R_odd^T V_odd: half the flops. The
// plan finds the mirror from the rows; small images (H < 48, where the extra passes cost
// more than they save) and rows with no such symmetry fold with the identity (all rows
// even, nothing halved), so any orthonormal rows work.
struct LowpassCpuPlan {
  LowpassCpuPlan() = default;
  LowpassCpuPlan(LowpassCpuPlan&&) = default;  // the pointers below point into storage
  LowpassCpuPlan(const LowpassCpuPlan&) = delete;

  LowpassParams p;
  int width_pad = 0;   // W rounded up to the vector width (row stride of the planes)
  int rank_w_pad = 0;  // rank_w rounded up likewise
  int half = 0;        // folded rows: pairs {i, mirror(i)} and fixed points i = mirror(i)
  int even_rows = 0;   // rows of R even under the mirror; they come first in R's order here
  std::vector<int> fold_first, fold_second;  // the two rows of each folded row
  std::vector<float> storage;
  const float* rows_half = nullptr;    // R (even rows, then odd) on fold_first [rank_h x half]
  const float* rows_half_t = nullptr;  // its transpose [half x rank_h]
  const float* cols_t = nullptr;       // C^T [width_pad x rank_w_pad], zero padded
  const float* cols = nullptr;         // C   [rank_w_pad x width_pad], zero padded
  const float* mask = nullptr;         // M, rows in R's order here [rank_h x rank_w_pad], or null
  size_t scratch_floats = 0;           // per thread
};

// rows: R [rank_h x H], cols: C [rank_w x W], mask: M [rank_h x rank_w] or null (all
// row-major, contiguous).
LowpassCpuPlan lowpass_cpu_plan(const LowpassParams& p, const float* rows, const float* cols,
                                const float* mask);

template <typename T>
void lowpass_image_cpu(const T* in, T* out, int64_t n, const LowpassCpuPlan& plan,
                       float* scratch);

#if defined(POISONKIT_WITH_CUDA)
// ---- CUDA driver (lowpass_cuda.cu): a whole batch on one stream, one product per kernel
// launch. rows, cols, mask as for the CPU plan (device pointers); scratch must hold
// lowpass_cuda_scratch_floats(p, n) floats.
}  // namespace poisonkit
#include <cuda_runtime_api.h>
namespace poisonkit {
size_t lowpass_cuda_scratch_floats(const LowpassParams& p, int64_t n);

template <typename T>
cudaError_t lowpass_cuda(const T* in, T* out, const float* rows, const float* cols,
                         const float* mask, int64_t n, const LowpassParams& p, float* scratch,
                         cudaStream_t stream);
#endif

}  // namespace poisonkit
