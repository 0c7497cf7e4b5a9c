// CPU driver of lowpass: per channel, four small matrix products on a float copy of the
// plane (folded in half along H for large images, see lowpass.h), all through one
// register-blocked product (6 rows x 2 vectors of accumulators); the output rows are
// converted back to the output dtype straight from the last product. Rows are padded to
// a multiple of 8 floats so every product runs on whole vectors.
//
// The extension is compiled for baseline x86-64 (SSE2, no FMA). On x86 the image driver
// is also compiled for x86-64-v3 (AVX2 + FMA) and v4 (AVX-512) with 8-float vectors and
// picked at run time. Baseline x86 gets 4-float vectors: measured here, 8-float ones are
// 20x slower on SSE2, 4-float ones about 3x slower than the v4 driver.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>

#include "lowpass.h"
#include "simd.h"
// The vector types below never cross a non-inlined call, so the ABI note is moot.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace poisonkit {

namespace {

constexpr int kPad = 8;                      // row padding, in floats: a multiple of any V
constexpr int kBlockRows = 6;                // rows of accumulators (6 x 2 vectors)
// Folding costs two extra passes over the plane and splits the products into shorter ones:
// measured here, it is 1.4x slower at H = 32, even at 48, 1.35-1.4x faster from 64 up.
constexpr int kFoldMinHeight = 48;
// V floats in one vector register (GCC vector extension).
template <int V> struct VecOf;
template <> struct VecOf<4> { typedef float type __attribute__((vector_size(16))); };
template <> struct VecOf<8> { typedef float type __attribute__((vector_size(32))); };
// Indices are 64-bit: the extension is built with -fwrapv, under which int counters may
// wrap, so gcc cannot fold their address arithmetic (1.5x slower products).
using idx = std::ptrdiff_t;

int round_up(int v, int m) { return (v + m - 1) / m * m; }

// C[MR x V*NV] = A[MR x k] * B[k x V*NV]; row-major with leading dims lda, ldb, ldc.
template <int V, int MR, int NV>
PK_ALWAYS_INLINE void product_block(const float* __restrict__ a, idx lda,
                                    const float* __restrict__ b, idx ldb, float* __restrict__ c,
                                    idx ldc, idx k) {
  using vec = typename VecOf<V>::type;
  vec acc[MR][NV] = {};
  for (idx t = 0; t < k; ++t, b += ldb, ++a) {
    vec bv[NV];
    for (int v = 0; v < NV; ++v) std::memcpy(&bv[v], b + v * V, sizeof(vec));
    for (int r = 0; r < MR; ++r) {
      const float s = a[r * lda];
      for (int v = 0; v < NV; ++v) acc[r][v] += s * bv[v];
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) std::memcpy(c + r * ldc + v * V, &acc[r][v], sizeof(vec));
}

template <int V, int MR>
PK_ALWAYS_INLINE void product_rows(const float* a, idx lda, const float* b, idx ldb, float* c,
                                   idx ldc, idx k, idx n) {
  idx j = 0;
  for (; j + 2 * V <= n; j += 2 * V) product_block<V, MR, 2>(a, lda, b + j, ldb, c + j, ldc, k);
  if (j < n) product_block<V, MR, 1>(a, lda, b + j, ldb, c + j, ldc, k);
}

// C[m x n] = A[m x k] * B[k x n], n a multiple of V. Rows go in balanced blocks of at
// most kBlockRows (9 rows: 5 + 4, not 6 + 3), since a short block is load bound.
template <int V>
PK_ALWAYS_INLINE void product(const float* a, idx lda, const float* b, idx ldb, float* c, idx ldc,
                              idx m, idx k, idx n) {
  const idx blocks = (m + kBlockRows - 1) / kBlockRows;
  for (idx block = 0, i = 0; block < blocks; ++block) {
    const idx rows = m / blocks + (block < m % blocks ? 1 : 0);
    const float* ar = a + i * lda;
    float* cr = c + i * ldc;
    switch (rows) {
      case 6: product_rows<V, 6>(ar, lda, b, ldb, cr, ldc, k, n); break;
      case 5: product_rows<V, 5>(ar, lda, b, ldb, cr, ldc, k, n); break;
      case 4: product_rows<V, 4>(ar, lda, b, ldb, cr, ldc, k, n); break;
      case 3: product_rows<V, 3>(ar, lda, b, ldb, cr, ldc, k, n); break;
      case 2: product_rows<V, 2>(ar, lda, b, ldb, cr, ldc, k, n); break;
      default: product_rows<V, 1>(ar, lda, b, ldb, cr, ldc, k, n); break;
    }
    i += rows;
  }
}

// Conversions run in fixed chunks of kPad, which the compiler turns into straight vector
// code (a runtime-length loop gets masked AVX-512 epilogues that cost more than the math).
template <typename T>
PK_ALWAYS_INLINE void load_row(const T* __restrict__ src, float* __restrict__ dst, idx w, idx wp) {
  idx j = 0;
  for (; j + kPad <= w; j += kPad)
    for (int q = 0; q < kPad; ++q) dst[j + q] = to_unit(src[j + q]);
  for (; j < w; ++j) dst[j] = to_unit(src[j]);
  for (; j < wp; ++j) dst[j] = 0.0f;
}

template <typename T>
PK_ALWAYS_INLINE void store_row(const float* __restrict__ src, T* __restrict__ dst, idx w,
                                StoreMode mode) {
  idx j = 0;
  for (; j + kPad <= w; j += kPad)
    for (int q = 0; q < kPad; ++q) store_unit(src[j + q], dst + j + q, mode);
  for (; j < w; ++j) store_unit(src[j], dst + j, mode);
}

template <typename T, int V>
PK_ALWAYS_INLINE void lowpass_image(const T* in, T* out, int64_t n, const LowpassCpuPlan& plan,
                                    float* scratch) {
  const LowpassParams& p = plan.p;
  const idx H = p.height, W = p.width, WP = plan.width_pad, HF = plan.half;
  const idx RH = p.rank_h, RWP = plan.rank_w_pad, RE = plan.even_rows, RO = RH - RE;
  const StoreMode mode = p.store();
  float* x = scratch;            // H x WP: the channel in [0,1]
  float* sum = x + H * WP;       // HF x WP: X+, later E
  float* diff = sum + HF * WP;   // HF x WP: X-, later O
  float* u = diff + HF * WP;     // RH x WP: R X
  float* y = u + RH * WP;        // RH x RWP: R X C^T (the kept coefficients)
  float* v = y + RH * RWP;       // RH x WP: (M o Y) C
  float* row = v + RH * WP;      // WP: one output row
  for (idx c = 0; c < p.channels; ++c) {
    const idx offset = (n * p.channels + c) * H * W;
    const T* src = in + offset;
    T* dst = out + offset;
    for (idx i = 0; i < H; ++i) load_row(src + i * W, x + i * WP, W, WP);
    const bool identity = HF == H && RO == 0;  // nothing folded: X+ = X
    for (idx t = 0; t < (identity ? 0 : HF); ++t) {
      const idx i = plan.fold_first[t], j = plan.fold_second[t];
      const float* __restrict__ a = x + i * WP;
      const float* __restrict__ b = x + j * WP;
      float* __restrict__ s = sum + t * WP;
      float* __restrict__ d = diff + t * WP;
      if (i == j) {
        std::copy(a, a + WP, s);
        std::fill(d, d + WP, 0.0f);
      } else {
        for (idx k = 0; k < WP; ++k) {
          s[k] = a[k] + b[k];
          d[k] = a[k] - b[k];
        }
      }
    }
    product<V>(plan.rows_half, HF, identity ? x : sum, WP, u, WP, RE, HF, WP);
    if (RO > 0) product<V>(plan.rows_half + RE * HF, HF, diff, WP, u + RE * WP, WP, RO, HF, WP);
    product<V>(u, WP, plan.cols_t, RWP, y, RWP, RH, WP, RWP);
    if (plan.mask != nullptr) {
      const float* __restrict__ m = plan.mask;
      float* __restrict__ yy = y;
      for (idx t = 0; t < RH * RWP; ++t) yy[t] *= m[t];
    }
    product<V>(y, RWP, plan.cols, WP, v, WP, RH, RWP, WP);
    float* e = sum;
    float* o = diff;
    product<V>(plan.rows_half_t, RH, v, WP, e, WP, HF, RE, WP);
    if (RO > 0) product<V>(plan.rows_half_t + RE, RH, v + RE * WP, WP, o, WP, HF, RO, WP);
    for (idx t = 0; t < HF; ++t) {
      const float* __restrict__ et = e + t * WP;
      const float* __restrict__ ot = o + t * WP;
      const idx i = plan.fold_first[t], j = plan.fold_second[t];
      if (RO == 0) {
        store_row(et, dst + i * W, W, mode);
        if (j != i) store_row(et, dst + j * W, W, mode);
        continue;
      }
      float* __restrict__ r = row;
      for (idx k = 0; k < WP; ++k) r[k] = et[k] + ot[k];
      store_row(row, dst + i * W, W, mode);
      if (j == i) continue;
      for (idx k = 0; k < WP; ++k) r[k] = et[k] - ot[k];
      store_row(row, dst + j * W, W, mode);
    }
  }
}

#if defined(PK_X86_LEVELS)
template <typename T>
__attribute__((target("arch=x86-64-v4"))) void lowpass_image_v4(const T* in, T* out, int64_t n,
                                                                const LowpassCpuPlan& plan,
                                                                float* scratch) {
  lowpass_image<T, 8>(in, out, n, plan, scratch);
}

template <typename T>
__attribute__((target("arch=x86-64-v3"))) void lowpass_image_v3(const T* in, T* out, int64_t n,
                                                                const LowpassCpuPlan& plan,
                                                                float* scratch) {
  lowpass_image<T, 8>(in, out, n, plan, scratch);
}

#endif

template <typename T>
void lowpass_image_dispatch(const T* in, T* out, int64_t n, const LowpassCpuPlan& plan,
                            float* scratch) {
#if defined(PK_X86_LEVELS)
  static const int level = x86_level();
  if (level == 4) return lowpass_image_v4<T>(in, out, n, plan, scratch);
  if (level == 3) return lowpass_image_v3<T>(in, out, n, plan, scratch);
  lowpass_image<T, 4>(in, out, n, plan, scratch);
#else
  lowpass_image<T, 8>(in, out, n, plan, scratch);
#endif
}

// +1 if row[mirror(i)] == row[i] for all i, -1 if == -row[i], 0 otherwise (float32 rows
// built in float64 may differ by an ulp across the mirror).
template <typename Mirror>
int parity(const float* row, int n, Mirror mirror) {
  constexpr float kTol = 1e-6f;
  bool even = true, odd = true;
  for (int i = 0; i < n; ++i) {
    const float a = row[i], b = row[mirror(i)];
    even = even && std::fabs(a - b) <= kTol;
    odd = odd && std::fabs(a + b) <= kTol;
  }
  return even ? 1 : (odd ? -1 : 0);
}

// Folds the H axis of plan with the first mirror under which every row of R is even or
// odd; order receives R's rows, even ones first.
void fold_rows(const float* rows, LowpassCpuPlan& plan, std::vector<int>& order) {
  const int H = plan.p.height, RH = plan.p.rank_h;
  const auto reverse = [H](int i) { return H - 1 - i; };
  const auto negate = [H](int i) { return (H - i) % H; };
  const auto identity = [](int i) { return i; };
  const auto try_mirror = [&](auto mirror) {
    std::vector<int> even, odd;
    for (int a = 0; a < RH; ++a) {
      const int s = parity(rows + static_cast<size_t>(a) * H, H, mirror);
      if (s == 0) return false;
      (s > 0 ? even : odd).push_back(a);
    }
    plan.even_rows = static_cast<int>(even.size());
    order = even;
    order.insert(order.end(), odd.begin(), odd.end());
    for (int i = 0; i < H; ++i) {
      if (i <= mirror(i)) {
        plan.fold_first.push_back(i);
        plan.fold_second.push_back(mirror(i));
      }
    }
    plan.half = static_cast<int>(plan.fold_first.size());
    return true;
  };
  if (H >= kFoldMinHeight && (try_mirror(reverse) || try_mirror(negate))) return;
  try_mirror(identity);
}

}  // namespace

LowpassCpuPlan lowpass_cpu_plan(const LowpassParams& p, const float* rows, const float* cols,
                                const float* mask) {
  LowpassCpuPlan plan;
  plan.p = p;
  const int H = p.height, W = p.width, RH = p.rank_h, RW = p.rank_w;
  const int WP = round_up(W, kPad), RWP = round_up(RW, kPad);
  plan.width_pad = WP;
  plan.rank_w_pad = RWP;
  std::vector<int> order;
  fold_rows(rows, plan, order);
  const int HF = plan.half;
  const size_t n_rows = static_cast<size_t>(RH) * HF, n_cols = static_cast<size_t>(RWP) * WP;
  const size_t n_mask = mask != nullptr ? static_cast<size_t>(RH) * RWP : 0;
  plan.storage.assign(2 * n_rows + 2 * n_cols + n_mask, 0.0f);
  float* r = plan.storage.data();
  float* rt = r + n_rows;
  float* ct = rt + n_rows;
  float* cc = ct + n_cols;
  for (int a = 0; a < RH; ++a)
    for (int t = 0; t < HF; ++t)
      r[a * HF + t] = rt[t * RH + a] = rows[order[a] * H + plan.fold_first[t]];
  for (int b = 0; b < RW; ++b)
    for (int j = 0; j < W; ++j) cc[b * WP + j] = ct[j * RWP + b] = cols[b * W + j];
  if (mask != nullptr) {
    float* m = cc + n_cols;
    for (int a = 0; a < RH; ++a)
      for (int b = 0; b < RW; ++b) m[a * RWP + b] = mask[order[a] * RW + b];
    plan.mask = m;
  }
  plan.rows_half = r;
  plan.rows_half_t = rt;
  plan.cols_t = ct;
  plan.cols = cc;
  plan.scratch_floats = static_cast<size_t>(H + 2 * HF + 2 * RH + 1) * WP +
                        static_cast<size_t>(RH) * RWP;
  return plan;
}

template <>
void lowpass_image_cpu<uint8_t>(const uint8_t* in, uint8_t* out, int64_t n,
                                const LowpassCpuPlan& plan, float* scratch) {
  lowpass_image_dispatch(in, out, n, plan, scratch);
}

template <>
void lowpass_image_cpu<float>(const float* in, float* out, int64_t n, const LowpassCpuPlan& plan,
                              float* scratch) {
  lowpass_image_dispatch(in, out, n, plan, scratch);
}

}  // namespace poisonkit
