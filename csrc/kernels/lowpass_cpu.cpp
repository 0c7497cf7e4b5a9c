// CPU driver of lowpass: per channel, four small matrix products on a float copy of the
// plane (folded in half along H and W for large images, see lowpass.h), all through one
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
// measured here (H only), it is 1.4x slower at H = 32, even at 48, 1.35-1.4x faster from
// 64 up; the same threshold serves W.
constexpr int kFoldMinSize = 48;
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

// Row i of a plane into the permuted layout: the first `half` columns, then (W folded)
// the mirror of each at half_pad + t (0 for a fixed point), zero padded. The mirrors are a
// reversed run of the source row (see LowpassAxisFold).
template <typename T>
PK_ALWAYS_INLINE void load_plane_row(const T* __restrict__ src, float* __restrict__ dst,
                                     const LowpassCpuPlan& plan) {
  const LowpassAxisFold& f = plan.fold_w;
  const idx HW = f.half, HP = plan.half_pad;
  load_row(src, dst, HW, HP);
  if (f.identity) return;
  float* __restrict__ m = dst + HP;
  const T* __restrict__ s = src + f.mirror_base;
  for (idx t = 0; t < f.pair_begin; ++t) m[t] = 0.0f;
  for (idx t = f.pair_begin; t < f.pair_end; ++t) m[t] = to_unit(s[-t]);
  for (idx t = f.pair_end; t < HP; ++t) m[t] = 0.0f;
}

template <typename T>
PK_ALWAYS_INLINE void store_plane_row(const float* __restrict__ src, T* __restrict__ dst,
                                      const LowpassCpuPlan& plan, StoreMode mode) {
  const LowpassAxisFold& f = plan.fold_w;
  store_row(src, dst, f.half, mode);
  if (f.identity) return;
  const float* __restrict__ m = src + plan.half_pad;
  T* __restrict__ d = dst + f.mirror_base;
  for (idx t = f.pair_begin; t < f.pair_end; ++t) store_unit(m[t], d - t, mode);
}

// a, b <- a + b, a - b over n floats.
PK_ALWAYS_INLINE void butterfly(float* __restrict__ a, float* __restrict__ b, idx n) {
  for (idx k = 0; k < n; ++k) {
    const float s = a[k] + b[k], d = a[k] - b[k];
    a[k] = s;
    b[k] = d;
  }
}

template <typename T, int V>
PK_ALWAYS_INLINE void lowpass_image(const T* in, T* out, int64_t n, const LowpassCpuPlan& plan,
                                    float* scratch) {
  const LowpassParams& p = plan.p;
  const idx H = p.height, W = p.width, WS = plan.row_stride, HF = plan.fold_h.half;
  const idx RH = p.rank_h, RE = plan.fold_h.even, RO = RH - RE;
  const idx HP = plan.half_pad, CE = plan.fold_w.even, CO = p.rank_w - CE;
  const idx CEP = plan.even_w_pad, YS = plan.coef_stride;
  const bool wfold = !plan.fold_w.identity, hfold = !plan.fold_h.identity;
  const int* second_h = plan.fold_h.second.data();
  const StoreMode mode = p.store();
  float* x = scratch;            // H x WS: the channel in [0,1]
  float* sum = x + H * WS;       // HF x WS: X+, later E
  float* diff = sum + HF * WS;   // HF x WS: X-, later O
  float* u = diff + HF * WS;     // RH x WS: R X
  float* y = u + RH * WS;        // RH x YS: R X C^T (the kept coefficients)
  float* v = y + RH * YS;        // RH x WS: (M o Y) C
  float* row = v + RH * WS;      // WS: one output row
  for (idx c = 0; c < p.channels; ++c) {
    const idx offset = (n * p.channels + c) * H * W;
    const T* src = in + offset;
    T* dst = out + offset;
    for (idx i = 0; i < H; ++i) load_plane_row(src + i * W, x + i * WS, plan);
    for (idx t = 0; t < (hfold ? HF : 0); ++t) {
      const idx j = second_h[t];
      const float* __restrict__ a = x + t * WS;
      const float* __restrict__ b = x + j * WS;
      float* __restrict__ s = sum + t * WS;
      float* __restrict__ d = diff + t * WS;
      if (t == j) {
        std::copy(a, a + WS, s);
        std::fill(d, d + WS, 0.0f);
      } else {
        for (idx k = 0; k < WS; ++k) {
          s[k] = a[k] + b[k];
          d[k] = a[k] - b[k];
        }
      }
    }
    // H axis: u = R X.
    product<V>(plan.rows_half, HF, hfold ? sum : x, WS, u, WS, RE, HF, WS);
    if (RO > 0) product<V>(plan.rows_half + RE * HF, HF, diff, WS, u + RE * WS, WS, RO, HF, WS);
    // W axis: y = u C^T, from the sums (even rows of C) and differences (odd rows) of u's
    // two halves.
    if (wfold) for (idx a = 0; a < RH; ++a) butterfly(u + a * WS, u + a * WS + HP, HP);
    product<V>(u, WS, plan.cols_t, YS, y, YS, RH, HP, CEP);
    if (CO > 0) product<V>(u + HP, WS, plan.cols_t + CEP, YS, y + CEP, YS, RH, HP, YS - CEP);
    if (plan.mask != nullptr) {
      const float* __restrict__ m = plan.mask;
      float* __restrict__ yy = y;
      for (idx t = 0; t < RH * YS; ++t) yy[t] *= m[t];
    }
    // v = (M o Y) C: the even rows' part on the first half, the odd rows' on the second,
    // then their sum (first half) and difference (mirrors).
    product<V>(y, YS, plan.cols, HP, v, WS, RH, CE, HP);
    if (CO > 0) product<V>(y + CEP, YS, plan.cols + CE * HP, HP, v + HP, WS, RH, CO, HP);
    if (wfold) {
      for (idx a = 0; a < RH; ++a) {
        if (CO == 0) std::copy(v + a * WS, v + a * WS + HP, v + a * WS + HP);
        else butterfly(v + a * WS, v + a * WS + HP, HP);
      }
    }
    // H axis back: out = R^T v, folded.
    float* e = sum;
    float* o = diff;
    product<V>(plan.rows_half_t, RH, v, WS, e, WS, HF, RE, WS);
    if (RO > 0) product<V>(plan.rows_half_t + RE, RH, v + RE * WS, WS, o, WS, HF, RO, WS);
    for (idx t = 0; t < HF; ++t) {
      const float* __restrict__ et = e + t * WS;
      const float* __restrict__ ot = o + t * WS;
      const idx j = hfold ? second_h[t] : t;
      if (RO == 0) {
        store_plane_row(et, dst + t * W, plan, mode);
        if (j != t) store_plane_row(et, dst + j * W, plan, mode);
        continue;
      }
      float* __restrict__ r = row;
      for (idx k = 0; k < WS; ++k) r[k] = et[k] + ot[k];
      store_plane_row(row, dst + t * W, plan, mode);
      if (j == t) continue;
      for (idx k = 0; k < WS; ++k) r[k] = et[k] - ot[k];
      store_plane_row(row, dst + j * W, plan, mode);
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

// The fold of a size-n axis with basis rows [count x n]: the first mirror under which
// every row is even or odd (identity for small axes or when none fits).
LowpassAxisFold fold_axis(const float* rows, int count, int n) {
  const auto reverse = [n](int i) { return n - 1 - i; };
  const auto negate = [n](int i) { return (n - i) % n; };
  LowpassAxisFold fold;
  const auto try_mirror = [&](auto mirror) {
    std::vector<int> even, odd;
    for (int a = 0; a < count; ++a) {
      const int s = parity(rows + static_cast<size_t>(a) * n, n, mirror);
      if (s == 0) return false;
      (s > 0 ? even : odd).push_back(a);
    }
    fold.even = static_cast<int>(even.size());
    fold.order = even;
    fold.order.insert(fold.order.end(), odd.begin(), odd.end());
    fold.second.clear();
    for (int i = 0; i < n && i <= mirror(i); ++i) fold.second.push_back(mirror(i));
    fold.half = static_cast<int>(fold.second.size());
    // Reverse: pairs from 0 (a fixed point at the end when n is odd); negate: from 1
    // (0 is fixed, and n / 2 when n is even).
    fold.pair_begin = mirror(0) == 0 ? 1 : 0;
    fold.pair_end = fold.second.back() == fold.half - 1 ? fold.half - 1 : fold.half;
    fold.mirror_base = fold.second[fold.pair_begin] + fold.pair_begin;
    fold.identity = false;
    return true;
  };
  if (n >= kFoldMinSize && (try_mirror(reverse) || try_mirror(negate))) return fold;
  fold = LowpassAxisFold{};
  fold.half = n;
  for (int i = 0; i < n; ++i) fold.second.push_back(i);
  fold.order.resize(count);
  for (int a = 0; a < count; ++a) fold.order[a] = a;
  fold.even = count;
  return fold;
}

}  // namespace

LowpassCpuPlan lowpass_cpu_plan(const LowpassParams& p, const float* rows, const float* cols,
                                const float* mask) {
  LowpassCpuPlan plan;
  plan.p = p;
  const int H = p.height, W = p.width, RH = p.rank_h, RW = p.rank_w;
  plan.fold_h = fold_axis(rows, RH, H);
  plan.fold_w = fold_axis(cols, RW, W);
  const int HF = plan.fold_h.half, HP = round_up(plan.fold_w.half, kPad);
  const int CE = plan.fold_w.even, CEP = round_up(CE, kPad);
  plan.half_pad = HP;
  plan.row_stride = plan.fold_w.identity ? HP : 2 * HP;
  plan.even_w_pad = CEP;
  plan.coef_stride = CEP + round_up(RW - CE, kPad);
  const int YS = plan.coef_stride;
  const size_t n_rows = static_cast<size_t>(RH) * HF;
  const size_t n_cols_t = static_cast<size_t>(HP) * YS, n_cols = static_cast<size_t>(RW) * HP;
  const size_t n_mask = mask != nullptr ? static_cast<size_t>(RH) * YS : 0;
  plan.storage.assign(2 * n_rows + n_cols_t + n_cols + n_mask, 0.0f);
  float* r = plan.storage.data();
  float* rt = r + n_rows;
  float* ct = rt + n_rows;
  float* cc = ct + n_cols_t;
  const std::vector<int>& order_h = plan.fold_h.order;
  const std::vector<int>& order_w = plan.fold_w.order;
  for (int a = 0; a < RH; ++a)
    for (int t = 0; t < HF; ++t) r[a * HF + t] = rt[t * RH + a] = rows[order_h[a] * H + t];
  // Coefficient column of C's b-th row (in C's order here): even rows from 0, odd from CEP.
  const auto coef_col = [CE, CEP](int b) { return b < CE ? b : CEP + (b - CE); };
  for (int b = 0; b < RW; ++b)
    for (int t = 0; t < plan.fold_w.half; ++t)
      cc[b * HP + t] = ct[t * YS + coef_col(b)] = cols[order_w[b] * W + t];
  if (mask != nullptr) {
    float* m = cc + n_cols;
    for (int a = 0; a < RH; ++a)
      for (int b = 0; b < RW; ++b) m[a * YS + coef_col(b)] = mask[order_h[a] * RW + order_w[b]];
    plan.mask = m;
  }
  plan.rows_half = r;
  plan.rows_half_t = rt;
  plan.cols_t = ct;
  plan.cols = cc;
  const size_t WS = plan.row_stride;
  plan.scratch_floats = (H + 2 * HF + 2 * RH + 1) * WS + static_cast<size_t>(RH) * YS;
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
