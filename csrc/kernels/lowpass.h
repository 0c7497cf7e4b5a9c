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
#include <string>
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

// ---- Validation, shared by the torch op and the DALI operator: a message (empty when
// fine) that each binding prefixes with its op name. p holds the image geometry and the
// factors' ranks; rows_len, cols_len: the length of R's and C's rows; mask_rows x mask_cols:
// M's shape when p.masked.
inline std::string lowpass_params_error(const LowpassParams& p, int64_t rows_len,
                                        int64_t cols_len, int64_t mask_rows, int64_t mask_cols) {
  const auto str = [](int64_t v) { return std::to_string(v); };
  if (rows_len != p.height || p.rank_h < 1 || p.rank_h > p.height)
    return "rows must be the kept basis rows along H, [r, " + str(p.height) + "] with 1 <= r <= " +
           str(p.height) + ", got [" + str(p.rank_h) + ", " + str(rows_len) + "]";
  if (cols_len != p.width || p.rank_w < 1 || p.rank_w > p.width)
    return "cols must be the kept basis rows along W, [r, " + str(p.width) + "] with 1 <= r <= " +
           str(p.width) + ", got [" + str(p.rank_w) + ", " + str(cols_len) + "]";
  if (p.masked && (mask_rows != p.rank_h || mask_cols != p.rank_w))
    return "mask must be a coefficient mask [" + str(p.rank_h) + ", " + str(p.rank_w) +
           "] (rows' and cols' ranks), got [" + str(mask_rows) + ", " + str(mask_cols) + "]";
  return "";
}

// ---- CPU driver (lowpass_cpu.cpp). A plan holds the basis matrices in the layouts the
// CPU products want; build it once per call, then run one image per call (torch inside
// at::parallel_for, DALI on its thread pool), each thread with its own scratch.
//
// Both axes are folded in half: every DCT row is even or odd under i <-> n-1-i, every
// Fourier row under i <-> -i mod n. Along H, with X+ = X_i + X_mirror(i) and X- = X_i -
// X_mirror(i) over half the rows, R X = [R_even X+ ; R_odd X-] and the output rows i,
// mirror(i) are E +- O with E = R_even^T V_even, O = R_odd^T V_odd: half the flops. Along W
// the same happens inside the planes: each row is stored permuted, the first half of the
// columns then their mirrors (each half padded to the vector width), so that the W-axis
// sums and differences are two contiguous halves. The plan finds each mirror from the
// basis rows; small axes (n < 48, where the extra passes cost more than they save) and
// rows with no such symmetry fold with the identity (all rows even, nothing halved), so
// any orthonormal rows work. Mirrors pair i with m(i) >= i, and the first members are
// 0, 1, ..., half-1 in every case (reverse, negate, identity).
struct LowpassAxisFold {
  int half = 0;                // folded positions: pairs {i, mirror(i)} and fixed points
  int even = 0;                // basis rows even under the mirror (they come first in order)
  std::vector<int> second;     // mirror(i) of each folded position i < half
  // The true pairs (mirror(i) != i) are the positions [pair_begin, pair_end), where
  // mirror(i) = mirror_base - i (reverse: n - 1 - i; negate: n - i): the mirrored half is a
  // reversed run, which the load and store below stream as whole vectors.
  int pair_begin = 0, pair_end = 0, mirror_base = 0;
  std::vector<int> order;      // the basis rows, even ones first
  bool identity = true;        // nothing folded (half = n, every row even)
};

struct LowpassCpuPlan {
  LowpassCpuPlan() = default;
  LowpassCpuPlan(LowpassCpuPlan&&) = default;  // the pointers below point into storage
  LowpassCpuPlan(const LowpassCpuPlan&) = delete;

  LowpassParams p;
  LowpassAxisFold fold_h, fold_w;
  int half_pad = 0;      // fold_w.half rounded up to the vector width
  int row_stride = 0;    // floats per plane row: 2 * half_pad (W folded), else half_pad
  int even_w_pad = 0;    // even rows of C, padded; the odd ones' coefficients start here
  int coef_stride = 0;   // floats per coefficient row: even_w_pad + odd rows of C, padded
  std::vector<float> storage;
  const float* rows_half = nullptr;    // R (even rows, then odd) on the first half [rank_h x half_h]
  const float* rows_half_t = nullptr;  // its transpose [half_h x rank_h]
  const float* cols_t = nullptr;       // C^T on W's first half [half_pad x coef_stride], zero padded
  const float* cols = nullptr;         // C (even rows, then odd) [rank_w x half_pad]
  const float* mask = nullptr;         // M in R's and C's orders [rank_h x coef_stride], or null
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
