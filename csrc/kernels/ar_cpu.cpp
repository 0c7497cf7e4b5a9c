// CPU driver of the AR ops. Generation runs one sample at a time in a scratch canvas: the
// six upper taps of a row are a vectorisable loop, leaving one FMA chain per row for the
// two left taps. Filtering converts the image to [0,1] floats once, then evaluates the
// shared per-pixel response for every class.
#include <cmath>

#include "ar.h"

namespace poisonkit {

namespace {

// The recursion of all C planes of one sample, row by row: the upper taps of each plane's
// row are a vectorised loop; the two left taps form one dependency chain per plane, and
// the C chains are interleaved (with the last two values kept in registers) so that
// their latencies overlap.
template <int C>
void recurse_planes(const float* coeffs_k, const ArParams& p, float* scratch) {
  const int Hc = p.canvas_h(), Wc = p.canvas_w();
  // Under 3 columns every pixel is an initial condition (and row[1] would not exist).
  if (Wc < 3) return;
  const int64_t plane = p.canvas_plane();
  float taps[C][kArTaps];  // a local copy: the canvas stores cannot alias it
  for (int c = 0; c < C; ++c)
    for (int t = 0; t < kArTaps; ++t) taps[c][t] = coeffs_k[c * kArTaps + t];
  for (int i = 2; i < Hc; ++i) {
    float left2[C], left1[C];
    float* rows[C];
    for (int c = 0; c < C; ++c) {
      const float* b = taps[c];
      float* __restrict__ row = scratch + c * plane + static_cast<int64_t>(i) * Wc;
      const float* __restrict__ r0 = row - 2 * Wc;
      const float* __restrict__ r1 = row - Wc;
      for (int j = 0; j + 2 < Wc; ++j) row[j + 2] = ar_upper(b, r0, r1, j);
      rows[c] = row;
      left2[c] = row[0];
      left1[c] = row[1];
    }
    for (int j = 2; j < Wc; ++j) {
      for (int c = 0; c < C; ++c) {
        const float v = ar_left(taps[c], rows[c][j], left2[c], left1[c]);
        rows[c][j] = v;
        left2[c] = left1[c];
        left1[c] = v;
      }
    }
  }
}

// Sum of squares (L2) or max |v| (L-inf) of one cropped row, in 8 float lanes that the
// compiler keeps in one vector register. Any inf or NaN makes the result non-finite (the
// max alone would skip a NaN, so L-inf also sums v * 0, which is NaN exactly for those).
template <bool Linf>
float row_norm_part(const float* __restrict__ src, int width) {
  constexpr int kLanes = 8;
  float lanes[kLanes] = {};
  float probe[kLanes] = {};
  int x = 0;
  for (; x + kLanes <= width; x += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float v = src[x + l];
      const float a = v < 0.0f ? -v : v;
      lanes[l] = Linf ? (a > lanes[l] ? a : lanes[l]) : lanes[l] + v * v;
      if (Linf) probe[l] += v * 0.0f;
    }
  }
  for (; x < width; ++x) {
    const float v = src[x];
    const float a = v < 0.0f ? -v : v;
    lanes[0] = Linf ? (a > lanes[0] ? a : lanes[0]) : lanes[0] + v * v;
    if (Linf) probe[0] += v * 0.0f;
  }
  float r = 0.0f, bad = 0.0f;
  for (int l = 0; l < kLanes; ++l) {
    r = Linf ? (lanes[l] > r ? lanes[l] : r) : r + lanes[l];
    bad += probe[l];
  }
  return bad == 0.0f ? r : bad;
}

// The Lp norm of the cropped canvas (rows combined in double).
template <bool Linf>
double cropped_norm(const float* scratch, const ArParams& p) {
  double total = 0.0;
  for (int c = 0; c < p.channels; ++c) {
    for (int y = 0; y < p.height; ++y) {
      const float part = row_norm_part<Linf>(
          scratch + c * p.canvas_plane() + static_cast<int64_t>(y + p.crop) * p.canvas_w() + p.crop,
          p.width);
      total = Linf ? (part > total || part != part ? part : total) : total + part;
    }
  }
  return Linf ? total : std::sqrt(total);
}

}  // namespace

size_t ar_cpu_scratch_floats(const ArParams& p) {
  return static_cast<size_t>(p.channels) * p.canvas_plane();
}

bool ar_generate_sample_cpu(const float* coeffs_k, uint64_t index, const ArParams& p,
                            float* __restrict__ out, float* __restrict__ scratch) {
  const PhiloxStream s = philox_stream(p.key, index, kArCanvasStream);
  for (int c = 0; c < p.channels; ++c) ar_initial_conditions(s, p, c, scratch + c * p.canvas_plane());
  switch (p.channels) {
    case 1: recurse_planes<1>(coeffs_k, p, scratch); break;
    case 3: recurse_planes<3>(coeffs_k, p, scratch); break;
    default:
      for (int c = 0; c < p.channels; ++c)
        ar_recurse_plane(coeffs_k + c * kArTaps, p, scratch + c * p.canvas_plane());
  }
  const double norm = p.norm == ArNorm::None   ? 1.0
                      : p.norm == ArNorm::Linf ? cropped_norm<true>(scratch, p)
                                               : cropped_norm<false>(scratch, p);
  const float scale = ar_scale(p, norm);
  for (int c = 0; c < p.channels; ++c) {
    for (int y = 0; y < p.height; ++y) {
      const float* __restrict__ src =
          scratch + c * p.canvas_plane() + static_cast<int64_t>(y + p.crop) * p.canvas_w() + p.crop;
      float* __restrict__ dst = out + c * p.out_plane() + static_cast<int64_t>(y) * p.width;
      for (int x = 0; x < p.width; ++x) dst[x] = scale * src[x];
    }
  }
  return std::isfinite(norm);
}

size_t ar_poison_cpu_scratch_floats(const ArParams& p) {
  return ar_cpu_scratch_floats(p) + static_cast<size_t>(p.channels) * p.out_plane();
}

template <typename T>
bool ar_poison_sample_cpu(const T* image, T* out, const float* coeffs_k, uint64_t index,
                          const ArParams& p, float* scratch) {
  float* __restrict__ delta = scratch + ar_cpu_scratch_floats(p);
  const bool finite = ar_generate_sample_cpu(coeffs_k, index, p, delta, scratch);
  const T* __restrict__ src = image;
  T* __restrict__ dst = out;
  const int64_t total = p.channels * p.out_plane();
  for (int64_t i = 0; i < total; ++i) ar_add_at(src, delta, dst, i);
  return finite;
}

template bool ar_poison_sample_cpu<uint8_t>(const uint8_t*, uint8_t*, const float*, uint64_t,
                                            const ArParams&, float*);
template bool ar_poison_sample_cpu<float>(const float*, float*, const float*, uint64_t,
                                          const ArParams&, float*);

void ar_canvas_sample_cpu(uint64_t index, const ArParams& p, float* out) {
  const PhiloxStream s = philox_stream(p.key, index, kArCanvasStream);
  normal_run(s, 0, p.channels * p.canvas_plane(), out);
}

template <typename T>
void ar_filter_image_cpu(const T* image, const float* coeffs, int num_classes, int channels,
                         int height, int width, float* __restrict__ out,
                         float* __restrict__ scratch) {
  // scratch: the image in [0,1] units, so that uint8 is converted once, not per class.
  const int64_t plane = static_cast<int64_t>(height) * width;
  for (int64_t i = 0; i < channels * plane; ++i) scratch[i] = to_unit(image[i]);
  const int OH = height - 2, OW = width - 2;
  for (int k = 0; k < num_classes; ++k) {
    const float* coeffs_k = coeffs + static_cast<int64_t>(k) * channels * kArTaps;
    float* dst = out + static_cast<int64_t>(k) * OH * OW;
    for (int y = 0; y < OH; ++y) {
      for (int x = 0; x < OW; ++x) {
        const float* at = scratch + static_cast<int64_t>(y) * width + x;
        dst[static_cast<int64_t>(y) * OW + x] = nan_if_nonfinite(ar_filter_at(
            coeffs_k, channels,
            [at, plane, width](int c, int a, int b) { return at[c * plane + a * width + b]; }));
      }
    }
  }
}

template void ar_filter_image_cpu<uint8_t>(const uint8_t*, const float*, int, int, int, int,
                                           float*, float*);
template void ar_filter_image_cpu<float>(const float*, const float*, int, int, int, int, float*,
                                         float*);

}  // namespace poisonkit
