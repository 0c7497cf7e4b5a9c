// Orthogonal projection defense (Sandoval-Segura et al., NeurIPS 2023): every image,
// flattened to D values in [0,1] units, loses its component in the span of an orthonormal
// basis Q (D x K):  out = x - Q (Q^T x).
//
// The basis is passed transposed, qt = Q^T (K x D, row k contiguous), so both products
// stream contiguous rows. The uint8 -> [0,1] conversion is fused into both passes (the
// input is read twice, never written as float), and the result is stored once.
//
// The math lives here once; projection_cpu.cpp and projection_cuda.cu only move data.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "common.h"

namespace poisonkit {

// Geometry and options of one project_out call; identical for every image of a batch.
struct ProjectionParams {
  int64_t dim = 0;     // D = C * H * W
  int rank = 0;        // K, columns of Q
  bool clamp = false;  // store clamped to [0,1] (uint8 output: rounded to nearest, saturated)

  PK_HD StoreMode store() const { return StoreMode{0.5f, clamp}; }
};

// Coefficient update of pixel d for the G rows k0..k0+G-1 of Q^T (rows past K add 0):
// acc[j] += x * Q[d, k0 + j].
template <int G>
PK_HD void accumulate_coefficients(float x, const float* qt, int64_t d, int k0,
                                   const ProjectionParams& p, float* acc) {
  for (int j = 0; j < G; ++j) {
    if (k0 + j < p.rank) acc[j] += x * qt[(k0 + j) * p.dim + d];
  }
}

// The projected pixel d: x - sum_k coeffs[k] * Q[d, k].
PK_HD float residual_at(float x, const float* coeffs, const float* qt, int64_t d,
                        const ProjectionParams& p) {
  float r = x;
  for (int k = 0; k < p.rank; ++k) r -= coeffs[k] * qt[k * p.dim + d];
  return r;
}

// ---- CPU driver (projection_cpu.cpp): `count` consecutive images per call (count = 1
// for one sample, as DALI hands them; torch passes blocks of consecutive images so that
// each tile of Q is reused across the block while it sits in L1).
size_t projection_cpu_scratch_floats(const ProjectionParams& p);

template <typename Tin, typename Tout>
void project_out_images_cpu(const Tin* in, Tout* out, int64_t count, const float* qt,
                            const ProjectionParams& p, float* scratch);

// The CUDA kernel keeps the K coefficients in shared memory (K <= kProjectionCudaMaxRank).
constexpr int kProjectionCudaMaxRank = 8192;

// ---- Validation, shared by the torch op and the DALI operator: a message (empty when
// fine) that each binding prefixes with its op name. image_dim: C*H*W of the images;
// q_rows x q_cols: Q's shape; cuda: the GPU kernel's rank limit applies.
inline std::string projection_shape_error(int64_t image_dim, int64_t q_rows, int64_t q_cols,
                                          bool cuda) {
  const auto str = [](int64_t v) { return std::to_string(v); };
  if (q_rows != image_dim)
    return "Q has " + str(q_rows) + " rows but the images have C*H*W = " + str(image_dim) +
           " values";
  if (q_cols < 1 || q_cols > image_dim)
    return "Q must have between 1 and D = " + str(image_dim) + " columns, got " + str(q_cols);
  if (cuda && q_cols > kProjectionCudaMaxRank)
    return "on CUDA, Q may have at most " + str(kProjectionCudaMaxRank) + " columns, got " +
           str(q_cols);
  return "";
}

#if defined(POISONKIT_WITH_CUDA)
// ---- CUDA driver (projection_cuda.cu): a whole batch on one stream, one fused kernel,
// one block per image.
}  // namespace poisonkit
#include <cuda_runtime_api.h>
namespace poisonkit {
template <typename Tin, typename Tout>
cudaError_t project_out_cuda(const Tin* in, Tout* out, int64_t n, const float* qt,
                             const ProjectionParams& p, cudaStream_t stream);
#endif

}  // namespace poisonkit
