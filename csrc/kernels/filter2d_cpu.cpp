// CPU driver of filter2d: converts one channel at a time into a padded float plane, then
// runs the shared filter_at over every output pixel. The x loop has a fixed, unrolled body
// over contiguous rows, which the compiler vectorises.
#include <algorithm>
#include <cmath>
#include <limits>

#include "filter2d.h"
#include "simd.h"  // the hot loops are multiversioned for AVX-512 / AVX2 + FMA / baseline

namespace poisonkit {

namespace {

int padded_h(const Filter2dParams& p) { return p.height + 2 * p.pad_h(); }
int padded_w(const Filter2dParams& p) { return p.width + 2 * p.pad_w(); }

// Conversions over contiguous runs; __restrict__ tells the compiler that a uint8 pointer
// does not alias the float one, which it otherwise must assume (and then not vectorise).
template <typename T>
PK_MULTIVERSION void load_run(const T* __restrict__ src, float* __restrict__ dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = to_unit(src[i]);
}

template <typename T>
PK_MULTIVERSION void store_run(const float* __restrict__ src, T* __restrict__ dst, size_t n,
               const Filter2dParams& p) {
  const StoreMode mode = p.store();
  for (size_t i = 0; i < n; ++i) store_unit(src[i], dst + i, mode);
}

// Max of a run and of init, in 8 independent lanes so that it vectorises (a single running
// max is a serial dependency the compiler must keep). NaN when init or any value is not
// finite (image_max's rule, filter2d.h): the lanes also sum v * 0, NaN exactly for those.
PK_MULTIVERSION float run_max(const float* __restrict__ v, size_t n, float init) {
  constexpr int kLanes = 8;
  float lanes[kLanes], probe[kLanes] = {};
  for (int l = 0; l < kLanes; ++l) lanes[l] = init;
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      lanes[l] = v[i + l] > lanes[l] ? v[i + l] : lanes[l];
      probe[l] += v[i + l] * 0.0f;
    }
  }
  for (; i < n; ++i) {
    lanes[0] = v[i] > lanes[0] ? v[i] : lanes[0];
    probe[0] += v[i] * 0.0f;
  }
  float m = init, bad = init * 0.0f;
  for (int l = 0; l < kLanes; ++l) {
    m = lanes[l] > m ? lanes[l] : m;
    bad += probe[l];
  }
  return m + bad;
}

// store_run of the values normalised by the image max, in one pass (normalize_by: the
// division the reference does, and its rule for a max that is not positive).
template <typename T>
PK_MULTIVERSION void store_run_normalized(const float* __restrict__ src, T* __restrict__ dst,
                                          size_t n, const Filter2dParams& p, float image_max) {
  const StoreMode mode = p.store();
  for (size_t i = 0; i < n; ++i) store_unit(normalize_by(src[i], image_max), dst + i, mode);
}

// Fills plane (padded_h x padded_w) from one input channel, in [0,1] units.
template <typename T>
void load_padded_plane(const T* src, const Filter2dParams& p, float* plane) {
  const int H = p.height, W = p.width, ph = p.pad_h(), pw = p.pad_w();
  const int PW = padded_w(p);
  for (int i = 0; i < padded_h(p); ++i) {
    float* row = plane + static_cast<size_t>(i) * PW;
    const int si = source_index(i - ph, H, p.padding);
    if (si < 0) {
      std::fill(row, row + PW, 0.0f);
      continue;
    }
    const T* srow = src + static_cast<size_t>(si) * W;
    load_run(srow, row + pw, W);
    for (int j = 0; j < pw; ++j) {
      const int l = source_index(j - pw, W, p.padding);
      const int r = source_index(W + j, W, p.padding);
      row[j] = l < 0 ? 0.0f : to_unit(srow[l]);
      row[pw + W + j] = r < 0 ? 0.0f : to_unit(srow[r]);
    }
  }
}

// Filters a padded plane into dst (out_h x out_w floats).
template <int KH, int KW>
PK_MULTIVERSION void filter_plane(const float* plane, int PW, const float* kernel, int OH, int OW, float* dst) {
  float k[KH * KW];
  std::copy(kernel, kernel + KH * KW, k);
  // 64-bit indices: the extension is built with -fwrapv, under which int index arithmetic
  // may wrap and the compiler gives up on the simplest addressing.
  const int64_t stride = PW;
  for (int64_t y = 0; y < OH; ++y) {
    const float* top = plane + y * stride;
    float* __restrict__ out = dst + y * OW;
    for (int64_t x = 0; x < OW; ++x) {
      const float* at = top + x;
      out[x] = filter_at<KH, KW>([at, stride](int a, int b) { return at[a * stride + b]; }, k);
    }
  }
}

}  // namespace

size_t filter2d_cpu_scratch_floats(const Filter2dParams& p) {
  const size_t plane = static_cast<size_t>(padded_h(p)) * padded_w(p);
  const size_t out_plane = static_cast<size_t>(p.out_h()) * p.out_w();
  // One padded plane, plus the filtered image (all channels when normalising by the max).
  return plane + out_plane * (p.normalize_max ? p.channels : 1);
}

template <typename T>
void filter2d_image_cpu(const T* in, T* out, const float* weights, int64_t n,
                        const Filter2dParams& p, float* scratch) {
  const int OH = p.out_h(), OW = p.out_w(), PW = padded_w(p);
  const size_t in_plane = static_cast<size_t>(p.height) * p.width;
  const size_t out_plane = static_cast<size_t>(OH) * OW;
  float* plane = scratch;
  float* filtered = scratch + static_cast<size_t>(padded_h(p)) * PW;
  const T* image = in + n * p.channels * in_plane;
  T* result = out + n * p.channels * out_plane;

  float image_max = std::numeric_limits<float>::lowest();  // finite: run_max reads init * 0
  for (int c = 0; c < p.channels; ++c) {
    load_padded_plane(image + c * in_plane, p, plane);
    float* dst = filtered + (p.normalize_max ? c * out_plane : 0);
    const float* kernel = p.kernel_of(weights, n, c);
    dispatch_kernel_size(p.kernel_h, p.kernel_w, [&]<int KH, int KW>() {
      filter_plane<KH, KW>(plane, PW, kernel, OH, OW, dst);
    });
    if (p.normalize_max) {
      image_max = run_max(dst, out_plane, image_max);
    } else {
      store_run(dst, result + c * out_plane, out_plane, p);
    }
  }
  if (p.normalize_max) {
    store_run_normalized(filtered, result, out_plane * p.channels, p, image_max);
  }
}

template void filter2d_image_cpu<uint8_t>(const uint8_t*, uint8_t*, const float*, int64_t,
                                          const Filter2dParams&, float*);
template void filter2d_image_cpu<float>(const float*, float*, const float*, int64_t,
                                        const Filter2dParams&, float*);

}  // namespace poisonkit
