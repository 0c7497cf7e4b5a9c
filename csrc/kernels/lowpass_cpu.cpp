// CPU driver of lowpass: per channel, four small matrix products on a float copy of the
// plane, all through one register-blocked product (6 rows x 16 columns of accumulators),
// the last one fused with the conversion back to the output dtype. Rows are padded to a
// multiple of 8 floats so every product runs on whole vectors.
//
// The extension is compiled for baseline x86-64 (SSE2, no FMA); the image driver is also
// cloned for x86-64-v3 (AVX2 + FMA) and v4 (AVX-512) and the loader picks the best clone
// for the running CPU (GCC function multiversioning), which is worth about 3x here.
#include <algorithm>
#include <cstring>

#include "lowpass.h"

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define PK_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PK_CPU_CLONES
#endif
#define PK_ALWAYS_INLINE inline __attribute__((always_inline))
// The 8-float vector type below never crosses a non-inlined call, so the ABI note is moot.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace poisonkit {

namespace {

constexpr int kVec = 8;                      // floats per vector
constexpr int kBlockRows = 6;                // rows of accumulators (6 x 2 vectors)
using vec = float __attribute__((vector_size(kVec * sizeof(float))));

int round_up(int v, int m) { return (v + m - 1) / m * m; }

PK_ALWAYS_INLINE vec load_vec(const float* p) {
  vec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

PK_ALWAYS_INLINE void store_vec(float* p, vec v) { std::memcpy(p, &v, sizeof(v)); }

// C[MR x 8*NV] = A[MR x k] * B[k x 8*NV]; row-major with leading dims lda, ldb, ldc.
template <int MR, int NV>
PK_ALWAYS_INLINE void product_block(const float* __restrict__ a, int lda,
                                    const float* __restrict__ b, int ldb, float* __restrict__ c,
                                    int ldc, int k) {
  vec acc[MR][NV] = {};
  for (int t = 0; t < k; ++t) {
    vec bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = load_vec(b + static_cast<size_t>(t) * ldb + v * kVec);
    for (int r = 0; r < MR; ++r) {
      const float s = a[static_cast<size_t>(r) * lda + t];
      for (int v = 0; v < NV; ++v) acc[r][v] += s * bv[v];
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) store_vec(c + static_cast<size_t>(r) * ldc + v * kVec, acc[r][v]);
}

template <int MR>
PK_ALWAYS_INLINE void product_rows(const float* a, int lda, const float* b, int ldb, float* c,
                                   int ldc, int k, int n) {
  int j = 0;
  for (; j + 2 * kVec <= n; j += 2 * kVec) product_block<MR, 2>(a, lda, b + j, ldb, c + j, ldc, k);
  if (j < n) product_block<MR, 1>(a, lda, b + j, ldb, c + j, ldc, k);
}

// C[m x n] = A[m x k] * B[k x n], n a multiple of kVec. Rows go in balanced blocks of at
// most kBlockRows (9 rows: 5 + 4, not 6 + 3), since a short block is load bound.
PK_ALWAYS_INLINE void product(const float* a, int lda, const float* b, int ldb, float* c, int ldc,
                              int m, int k, int n) {
  const int blocks = (m + kBlockRows - 1) / kBlockRows;
  for (int block = 0, i = 0; block < blocks; ++block) {
    const int rows = m / blocks + (block < m % blocks ? 1 : 0);
    const float* ar = a + static_cast<size_t>(i) * lda;
    float* cr = c + static_cast<size_t>(i) * ldc;
    switch (rows) {
      case 6: product_rows<6>(ar, lda, b, ldb, cr, ldc, k, n); break;
      case 5: product_rows<5>(ar, lda, b, ldb, cr, ldc, k, n); break;
      case 4: product_rows<4>(ar, lda, b, ldb, cr, ldc, k, n); break;
      case 3: product_rows<3>(ar, lda, b, ldb, cr, ldc, k, n); break;
      case 2: product_rows<2>(ar, lda, b, ldb, cr, ldc, k, n); break;
      default: product_rows<1>(ar, lda, b, ldb, cr, ldc, k, n); break;
    }
    i += rows;
  }
}

template <typename T>
PK_ALWAYS_INLINE void load_row(const T* __restrict__ src, float* __restrict__ dst, int w, int wp) {
  for (int j = 0; j < w; ++j) dst[j] = to_unit(src[j]);
  for (int j = w; j < wp; ++j) dst[j] = 0.0f;
}

template <typename T>
PK_ALWAYS_INLINE void store_row(const float* __restrict__ src, T* __restrict__ dst, int w,
                                StoreMode mode) {
  for (int j = 0; j < w; ++j) store_unit(src[j], dst + j, mode);
}

template <typename T>
PK_ALWAYS_INLINE void lowpass_image(const T* in, T* out, int64_t n, const LowpassCpuPlan& plan,
                                    float* scratch) {
  const LowpassParams& p = plan.p;
  const int H = p.height, W = p.width, WP = plan.width_pad;
  const int RH = p.rank_h, RWP = plan.rank_w_pad;
  const StoreMode mode = p.store();
  float* x = scratch;                                 // H x WP
  float* u = x + static_cast<size_t>(H) * WP;         // RH x WP: R X
  float* y = u + static_cast<size_t>(RH) * WP;        // RH x RWP: R X C^T (coefficients)
  float* v = y + static_cast<size_t>(RH) * RWP;       // RH x WP: (M o Y) C
  float* tile = v + static_cast<size_t>(RH) * WP;     // kBlockRows x WP: output rows
  const size_t plane = static_cast<size_t>(H) * W;
  for (int c = 0; c < p.channels; ++c) {
    const size_t offset = (static_cast<size_t>(n) * p.channels + c) * plane;
    const T* src = in + offset;
    T* dst = out + offset;
    for (int i = 0; i < H; ++i) load_row(src + static_cast<size_t>(i) * W, x + i * WP, W, WP);
    product(plan.rows, H, x, WP, u, WP, RH, H, WP);
    product(u, WP, plan.cols_t, RWP, y, RWP, RH, WP, RWP);
    if (plan.mask != nullptr) {
      const float* __restrict__ m = plan.mask;
      float* __restrict__ yy = y;
      for (size_t t = 0; t < static_cast<size_t>(RH) * RWP; ++t) yy[t] *= m[t];
    }
    product(y, RWP, plan.cols, WP, v, WP, RH, RWP, WP);
    for (int i = 0; i < H; i += kBlockRows) {
      const int rows = std::min(kBlockRows, H - i);
      product(plan.rows_t + static_cast<size_t>(i) * RH, RH, v, WP, tile, WP, rows, RH, WP);
      for (int r = 0; r < rows; ++r)
        store_row(tile + r * WP, dst + static_cast<size_t>(i + r) * W, W, mode);
    }
  }
}

PK_CPU_CLONES void lowpass_image_u8(const uint8_t* in, uint8_t* out, int64_t n,
                                    const LowpassCpuPlan& plan, float* scratch) {
  lowpass_image(in, out, n, plan, scratch);
}

PK_CPU_CLONES void lowpass_image_f32(const float* in, float* out, int64_t n,
                                     const LowpassCpuPlan& plan, float* scratch) {
  lowpass_image(in, out, n, plan, scratch);
}

}  // namespace

LowpassCpuPlan lowpass_cpu_plan(const LowpassParams& p, const float* rows, const float* cols,
                                const float* mask) {
  LowpassCpuPlan plan;
  plan.p = p;
  const int H = p.height, W = p.width, RH = p.rank_h, RW = p.rank_w;
  const int WP = round_up(W, kVec), RWP = round_up(RW, kVec);
  plan.width_pad = WP;
  plan.rank_w_pad = RWP;
  const size_t n_rows = static_cast<size_t>(RH) * H, n_cols = static_cast<size_t>(RWP) * WP;
  const size_t n_mask = mask != nullptr ? static_cast<size_t>(RH) * RWP : 0;
  plan.storage.assign(2 * n_rows + 2 * n_cols + n_mask, 0.0f);
  float* r = plan.storage.data();
  float* rt = r + n_rows;
  float* ct = rt + n_rows;
  float* cc = ct + n_cols;
  for (int a = 0; a < RH; ++a)
    for (int i = 0; i < H; ++i) r[a * H + i] = rt[i * RH + a] = rows[a * H + i];
  for (int b = 0; b < RW; ++b)
    for (int j = 0; j < W; ++j) cc[b * WP + j] = ct[j * RWP + b] = cols[b * W + j];
  if (mask != nullptr) {
    float* m = cc + n_cols;
    for (int a = 0; a < RH; ++a)
      for (int b = 0; b < RW; ++b) m[a * RWP + b] = mask[a * RW + b];
    plan.mask = m;
  }
  plan.rows = r;
  plan.rows_t = rt;
  plan.cols_t = ct;
  plan.cols = cc;
  plan.scratch_floats = static_cast<size_t>(H) * WP + 2 * static_cast<size_t>(RH) * WP +
                        static_cast<size_t>(RH) * RWP + static_cast<size_t>(kBlockRows) * WP;
  return plan;
}

template <>
void lowpass_image_cpu<uint8_t>(const uint8_t* in, uint8_t* out, int64_t n,
                                const LowpassCpuPlan& plan, float* scratch) {
  lowpass_image_u8(in, out, n, plan, scratch);
}

template <>
void lowpass_image_cpu<float>(const float* in, float* out, int64_t n, const LowpassCpuPlan& plan,
                              float* scratch) {
  lowpass_image_f32(in, out, n, plan, scratch);
}

}  // namespace poisonkit
