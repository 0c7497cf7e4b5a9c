// CPU driver of project_out. Images are processed in blocks of up to kBlockImages, D in
// tiles of kTile pixels, so that one tile of Q^T (K x kTile floats) stays in L1 while every
// image of the block uses it:
//   pass 1: convert the block's tile to float, then coeffs[b, k] += <tile_b, qt_k>;
//   pass 2: convert the tile again, subtract sum_k coeffs[b, k] qt_k, store once in the
//           output dtype.
// Pixels stay in the input's units (0..255 for uint8) throughout; the 1/255 is applied
// once at the store (x - Q Q^T x is linear in x), not as a division per load.
// The hot loops are `omp simd` (the extension is built with -fopenmp), which lets the
// compiler vectorise the float reductions; rows of Q^T are taken kGroup at a time so each
// load of a tile serves several products. The driver is compiled for AVX-512, AVX2+FMA
// and baseline x86-64 and picks one at load time (gcc target_clones).
// Without trapping math gcc if-converts the clamps of unit_to_u8 into vector selects
// inside these loops (with it, the uint8 store stays scalar and branchy below AVX-512).
#pragma GCC optimize("no-trapping-math")
#include <algorithm>
#include <type_traits>

#include "projection.h"
#include "simd.h"

namespace poisonkit {

namespace {

constexpr int64_t kBlockImages = 8;
constexpr int64_t kTile = 512;
constexpr int64_t kGroup = 4;  // rows of Q^T handled per pass over a tile


// Pixels as float in the input's own units (0..255 for uint8): the 1/255 of to_unit is
// applied once per output value instead of once per load (vector division is slow).
template <typename Tin>
PK_ALWAYS_INLINE void load_tile(const Tin* __restrict__ src, float* __restrict__ dst, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]);
}

template <typename Tin>
constexpr float unit_scale() {
  return std::is_same_v<Tin, uint8_t> ? 1.0f / 255.0f : 1.0f;
}

// coeffs[j] += <x, q_j> for the kGroup rows q_j = qt + j * D: x is loaded once per group.
PK_ALWAYS_INLINE void accumulate_group(const float* __restrict__ x, const float* __restrict__ q, int64_t D,
                      int64_t n, float* coeffs) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int64_t i = 0; i < n; ++i) {
    s0 += x[i] * q[i];
    s1 += x[i] * q[D + i];
    s2 += x[i] * q[2 * D + i];
    s3 += x[i] * q[3 * D + i];
  }
  coeffs[0] += s0, coeffs[1] += s1, coeffs[2] += s2, coeffs[3] += s3;
}

PK_ALWAYS_INLINE void accumulate_one(const float* __restrict__ x, const float* __restrict__ q, int64_t n,
                    float* coeff) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += x[i] * q[i];
  *coeff += s;
}

// r -= sum_j c[j] q_j over a group of kGroup rows (one load and store of r per group).
PK_ALWAYS_INLINE void subtract_group(float* __restrict__ r, const float* __restrict__ q, int64_t D, int64_t n,
                    const float* c) {
  const float c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    r[i] -= c0 * q[i] + c1 * q[D + i] + c2 * q[2 * D + i] + c3 * q[3 * D + i];
  }
}

PK_ALWAYS_INLINE void subtract_one(float* __restrict__ r, const float* __restrict__ q, int64_t n, float c) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) r[i] -= c * q[i];
}

template <typename Tout>
PK_ALWAYS_INLINE void store_tile(const float* __restrict__ r, float scale, Tout* __restrict__ dst,
                          int64_t n, StoreMode mode) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) store_unit(r[i] * scale, dst + i, mode);
}

// One block of `count` <= kBlockImages images. scratch: kBlockImages * kTile floats (the
// converted tiles) then kBlockImages * K floats (the coefficients). The sums of
// accumulate_coefficients / residual_at, regrouped by kGroup rows of Q^T so that the d loop
// vectorises (gcc does not vectorise a d loop around a runtime k loop).
template <typename Tin, typename Tout>
PK_MULTIVERSION void project_block(const Tin* in, Tout* out, int64_t count, const float* qt,
                                   const ProjectionParams& p, float* scratch) {
  const int64_t D = p.dim, K = p.rank, K4 = K - K % kGroup;
  float* tile = scratch;
  float* coeffs = scratch + kBlockImages * kTile;
  std::fill(coeffs, coeffs + count * K, 0.0f);
  for (int64_t d0 = 0; d0 < D; d0 += kTile) {
    const int64_t n = std::min(kTile, D - d0);
    for (int64_t b = 0; b < count; ++b) load_tile(in + b * D + d0, tile + b * kTile, n);
    for (int64_t k = 0; k < K; k += k < K4 ? kGroup : 1) {
      const float* q = qt + k * D + d0;
      for (int64_t b = 0; b < count; ++b) {
        if (k < K4) {
          accumulate_group(tile + b * kTile, q, D, n, coeffs + b * K + k);
        } else {
          accumulate_one(tile + b * kTile, q, n, coeffs + b * K + k);
        }
      }
    }
  }
  const StoreMode mode = p.store();
  for (int64_t d0 = 0; d0 < D; d0 += kTile) {
    const int64_t n = std::min(kTile, D - d0);
    for (int64_t b = 0; b < count; ++b) {
      float* r = tile + b * kTile;
      const float* c = coeffs + b * K;
      load_tile(in + b * D + d0, r, n);
      for (int64_t k = 0; k < K4; k += kGroup) subtract_group(r, qt + k * D + d0, D, n, c + k);
      for (int64_t k = K4; k < K; ++k) subtract_one(r, qt + k * D + d0, n, c[k]);
      store_tile(r, unit_scale<Tin>(), out + b * D + d0, n, mode);
    }
  }
}

}  // namespace

size_t projection_cpu_scratch_floats(const ProjectionParams& p) {
  return static_cast<size_t>(kBlockImages) * (kTile + p.rank);
}

template <typename Tin, typename Tout>
void project_out_images_cpu(const Tin* in, Tout* out, int64_t count, const float* qt,
                            const ProjectionParams& p, float* scratch) {
  for (int64_t i = 0; i < count; i += kBlockImages) {
    project_block<Tin, Tout>(in + i * p.dim, out + i * p.dim, std::min(kBlockImages, count - i),
                             qt, p, scratch);
  }
}

template void project_out_images_cpu<uint8_t, float>(const uint8_t*, float*, int64_t,
                                                     const float*, const ProjectionParams&, float*);
template void project_out_images_cpu<uint8_t, uint8_t>(const uint8_t*, uint8_t*, int64_t,
                                                       const float*, const ProjectionParams&,
                                                       float*);
template void project_out_images_cpu<float, float>(const float*, float*, int64_t, const float*,
                                                   const ProjectionParams&, float*);

}  // namespace poisonkit
