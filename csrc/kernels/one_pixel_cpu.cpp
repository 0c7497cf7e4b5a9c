// CPU driver of the OPS ops: the moment pass is a contiguous, vectorisable loop per image
// plane; scores and the greedy selection are small (K x HW x 2^C) and serial.
#include <cstring>

#include "one_pixel.h"

namespace poisonkit {

template <typename T>
void one_pixel_moments_cpu(const T* x, const int64_t* labels, int64_t n, int64_t size,
                           int64_t begin, int64_t end, double* sums, double* squares) {
  for (int64_t i = 0; i < n; ++i) {
    const T* __restrict__ src = x + i * size;
    double* __restrict__ s = sums + labels[i] * size;
    double* __restrict__ q = squares + labels[i] * size;
    for (int64_t j = begin; j < end; ++j) {
      const double v = static_cast<double>(src[j]);
      s[j] += v;
      q[j] += v * v;
    }
  }
}

template void one_pixel_moments_cpu<uint8_t>(const uint8_t*, const int64_t*, int64_t, int64_t,
                                             int64_t, int64_t, double*, double*);
template void one_pixel_moments_cpu<float>(const float*, const int64_t*, int64_t, int64_t,
                                           int64_t, int64_t, double*, double*);

void one_pixel_scores_cpu(const double* sums, const double* squares, const int64_t* counts,
                          int num_classes, int channels, int64_t plane, double unit,
                          double* scores) {
  const int colours = 1 << channels;
  for (int k = 0; k < num_classes; ++k) {
    for (int64_t p = 0; p < plane; ++p) {
      double S[kOnePixelMaxChannels], Q[kOnePixelMaxChannels];
      for (int c = 0; c < channels; ++c) {
        S[c] = sums[(static_cast<int64_t>(k) * channels + c) * plane + p];
        Q[c] = squares[(static_cast<int64_t>(k) * channels + c) * plane + p];
      }
      double* dst = scores + (static_cast<int64_t>(k) * plane + p) * colours;
      for (int b = 0; b < colours; ++b)
        dst[b] = one_pixel_score(S, Q, channels, static_cast<double>(counts[k]), unit, b);
    }
  }
}

void one_pixel_select_cpu(const double* scores, int num_classes, int64_t entries,
                          int64_t* choice) {
  for (int k = 0; k < num_classes; ++k) {
    const double* s = scores + static_cast<int64_t>(k) * entries;
    int64_t best = -1;
    double best_score = 0.0;
    for (int64_t e = 0; e < entries; ++e) {
      double v = s[e];
      for (int j = 0; j < k; ++j)
        if (choice[j] == e) v = 0.0;  // taken by an earlier class: scored 0, as the reference
      if (best < 0 || one_pixel_better(v, best_score)) {
        best = e;
        best_score = v;
      }
    }
    choice[k] = best;
  }
}

template <typename T>
void one_pixel_set_sample_cpu(T* image, int channels, int64_t plane, int64_t pixel,
                              const float* colour) {
  for (int c = 0; c < channels; ++c) image[c * plane + pixel] = one_pixel_value<T>(colour[c]);
}

template <typename T>
void one_pixel_apply_sample_cpu(const T* image, T* out, int channels, int64_t plane,
                                int64_t pixel, const float* colour) {
  std::memcpy(out, image, sizeof(T) * channels * plane);
  one_pixel_set_sample_cpu(out, channels, plane, pixel, colour);
}

#define POISONKIT_ONE_PIXEL_SAMPLE(T)                                                          \
  template void one_pixel_set_sample_cpu<T>(T*, int, int64_t, int64_t, const float*);        \
  template void one_pixel_apply_sample_cpu<T>(const T*, T*, int, int64_t, int64_t, const float*);
POISONKIT_ONE_PIXEL_SAMPLE(uint8_t)
POISONKIT_ONE_PIXEL_SAMPLE(float)
#undef POISONKIT_ONE_PIXEL_SAMPLE

}  // namespace poisonkit
