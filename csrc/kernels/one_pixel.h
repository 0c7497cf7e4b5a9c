// OPS: the one-pixel shortcut (Wu et al., ICLR 2023; DESIGN 3.6; the reference's
// perturb.py pixel_search with sparsity 1).
//
// Search: for class k, position p and corner colour b in {0,1}^C (channel c takes bit
// C-1-c of the colour number, as the reference's pixel_value // 2 // 2, // 2 % 2, % 2),
// the score is mean / std (population std) of |b_c - v| over the class's images and the
// C channels of pixel p, in [0,1] units. One pass over the dataset accumulates, per class,
// channel and position, the sum S and the sum of squares Q of the pixel values; since
// |b - v| is v or 1 - v, every colour's score follows from them:
//   sum |b - v| = sum_c (b_c ? n - S_c : S_c),  sum (b - v)^2 = sum_c (b_c ? n - 2 S_c + Q_c : Q_c)
//   score = A / sqrt(m B - A^2)  (A, B those sums, m = n C; equal to mean / std).
// Values are in the input's units (uint8 images give integer sums, exact in double; the
// score does not depend on the unit as long as b is 1 in it). Classes are then taken in
// order: the (position, colour) pair with the highest score, pairs taken by earlier
// classes scoring 0, ties and NaN ordered as numpy's argsort (NaN highest; among equal
// scores the later flat index p * 2^C + b). Position p is pixel (p / H, p % H), so the
// search needs square images, as the reference.
//
// Apply: every image of class k gets pixel (row_k, col_k) set to colour_k.
#pragma once
#include <cmath>
#include <cstdint>

#include "common.h"

namespace poisonkit {

constexpr int kOnePixelMaxChannels = 4;

// Score of colour b at one (class, position): S[c], Q[c] the channel sums over the class's
// n images, unit the value of a lit channel.
PK_HD double one_pixel_score(const double* S, const double* Q, int channels, double n,
                             double unit, int colour) {
  double a = 0.0, b = 0.0;
  for (int c = 0; c < channels; ++c) {
    const bool lit = (colour >> (channels - 1 - c)) & 1;
    a += lit ? n * unit - S[c] : S[c];
    b += lit ? n * unit * unit - 2.0 * unit * S[c] + Q[c] : Q[c];
  }
  const double m = n * channels;
  double var = m * b - a * a;  // m^2 times the variance
  var = var > 0.0 ? var : 0.0;
  return a / sqrt(var);
}

// numpy argsort's order on scores (NaN above everything); ties go to the later index.
PK_HD bool one_pixel_better(double candidate, double best) {
  if (best != best) return candidate != candidate;
  return candidate != candidate || candidate >= best;
}

// A colour channel in [0,1] in the image's type (uint8: 0 or 255).
template <typename T>
PK_HD T one_pixel_value(float colour) {
  T v;
  store_unit(colour, &v, StoreMode{0.5f, true});
  return v;
}

// The poisoned value at element i of an image [C, H, W] of class k.
template <typename T>
PK_HD T one_pixel_at(const T* image, int64_t i, int64_t plane, int64_t pixel, const float* colour) {
  if (i % plane != pixel) return image[i];
  return one_pixel_value<T>(colour[i / plane]);
}

// ---- CPU driver (one_pixel_cpu.cpp).
// Accumulates elements [begin, end) of every image x [N, size] (size = C * HW) of labels
// [N] into sums and squares [K, size] (added to); disjoint ranges can run in parallel.
template <typename T>
void one_pixel_moments_cpu(const T* x, const int64_t* labels, int64_t n, int64_t size,
                           int64_t begin, int64_t end, double* sums, double* squares);

// Scores [K, HW, 2^C] from the moments and counts [K] (x's unit).
void one_pixel_scores_cpu(const double* sums, const double* squares, const int64_t* counts,
                          int num_classes, int channels, int64_t plane, double unit,
                          double* scores);

// The greedy selection over scores [K, HW, 2^C]: choice[k] = p * 2^C + b.
void one_pixel_select_cpu(const double* scores, int num_classes, int64_t entries,
                          int64_t* choice);

// One image [C, H, W]: sets its pixel (row * W + col) to colour [C] in [0,1], in place
// (the batch op copies the batch first, at memcpy speed, then sets N pixels).
template <typename T>
void one_pixel_set_sample_cpu(T* image, int channels, int64_t plane, int64_t pixel,
                              const float* colour);

// The same into out (a copy of image with the pixel set).
template <typename T>
void one_pixel_apply_sample_cpu(const T* image, T* out, int channels, int64_t plane,
                                int64_t pixel, const float* colour);

#if defined(POISONKIT_WITH_CUDA)
// ---- CUDA driver (one_pixel_cuda.cu).
}  // namespace poisonkit
#include <cuda_runtime_api.h>
namespace poisonkit {
template <typename T>
cudaError_t one_pixel_moments_cuda(const T* x, const int64_t* labels, int64_t n, int channels,
                                   int64_t plane, double* sums, double* squares,
                                   cudaStream_t stream);

template <typename T>
cudaError_t one_pixel_apply_cuda(const T* x, T* out, const int64_t* labels,
                                 const int64_t* positions, const float* colours, int64_t n,
                                 int channels, int64_t plane, cudaStream_t stream);
#endif

}  // namespace poisonkit
