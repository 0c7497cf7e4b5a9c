// Autoregressive (AR) perturbations (Sandoval-Segura et al., NeurIPS 2022; DESIGN 3.1).
//
// Generation: a canvas of N(0,1) draws of shape (C, H + crop, W + crop); rows 0-1 and
// columns 0-1 are initial conditions; in raster order
//   x[c, i+2, j+2] = sum_{(a,b) != (2,2)} b[c, a, b] x[c, i+a, j+b],
// then the top/left `crop` rows/columns are dropped and the rest scaled to an Lp norm of
// eps over all C*H*W entries. Canvas entry (c, i, j) is normal draw (c*Hc + i)*Wc + j of
// the sample's Philox stream (key, sample index, kArCanvasStream).
//
// Detection: the AR filter of class k is b[k] with tap (2,2) set to -1; its valid
// response summed over channels is ~0 on class k's perturbations.
//
// The math lives here once; ar_cpu.cpp and ar_cuda.cu only move data.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "common.h"
#include "philox.h"

namespace poisonkit {

constexpr uint32_t kArCanvasStream = 0x41520001u;  // 'AR', canvas draws
constexpr int kArTaps = 9;

enum class ArNorm : int { None = 0, L2 = 1, Linf = 2 };

// Geometry and options of one ar_generate call.
struct ArParams {
  int channels = 0;
  int height = 0;  // output H
  int width = 0;   // output W
  int crop = 0;
  float eps = 1.0f;
  ArNorm norm = ArNorm::L2;  // None: return the unscaled process (the sampler's check)
  uint64_t key = 0;
  // CUDA only: > 0 makes the kernels check each sample's label against [0, num_classes) and
  // its index against >= 0, reporting through the status flags instead of a host-side scan
  // of labels and indices before the launch (two host syncs each).
  int64_t num_classes = 0;

  PK_HD int canvas_h() const { return height + crop; }
  PK_HD int canvas_w() const { return width + crop; }
  PK_HD int64_t canvas_plane() const { return static_cast<int64_t>(canvas_h()) * canvas_w(); }
  PK_HD int64_t out_plane() const { return static_cast<int64_t>(height) * width; }
};

// First draw number of canvas row i of channel c.
PK_HD uint64_t ar_canvas_draw(const ArParams& p, int c, int i) {
  return static_cast<uint64_t>(c * p.canvas_h() + i) * p.canvas_w();
}

// Fills the initial conditions of one canvas plane (rows 0-1, then columns 0-1 of every
// later row); the rest is left to the recursion.
PK_HD void ar_initial_conditions(const PhiloxStream& s, const ArParams& p, int c, float* plane) {
  const int Hc = p.canvas_h(), Wc = p.canvas_w();
  const int rows = Hc < 2 ? Hc : 2;
  normal_run(s, ar_canvas_draw(p, c, 0), static_cast<int64_t>(rows) * Wc, plane);
  const int cols = Wc < 2 ? Wc : 2;
  for (int i = 2; i < Hc; ++i) normal_run(s, ar_canvas_draw(p, c, i), cols, plane + i * Wc);
}

// The six taps of the two rows above, at output column j + 2 (window columns j..j+2).
PK_HD float ar_upper(const float* b, const float* r0, const float* r1, int j) {
  return b[0] * r0[j] + b[1] * r0[j + 1] + b[2] * r0[j + 2] +
         b[3] * r1[j] + b[4] * r1[j + 1] + b[5] * r1[j + 2];
}

// Completes x[i+2, j+2] from the upper taps and the two values to its left.
PK_HD float ar_left(const float* b, float upper, float left2, float left1) {
  return upper + b[6] * left2 + b[7] * left1;
}

// One canvas plane's recursion, in raster order (initial conditions already in place).
PK_HD void ar_recurse_plane(const float* b, const ArParams& p, float* plane) {
  const int Hc = p.canvas_h(), Wc = p.canvas_w();
  for (int i = 2; i < Hc; ++i) {
    const float* r0 = plane + (i - 2) * Wc;
    const float* r1 = plane + (i - 1) * Wc;
    float* row = plane + i * Wc;
    for (int j = 0; j + 2 < Wc; ++j) row[j + 2] = ar_upper(b, r0, r1, j);
    for (int j = 0; j + 2 < Wc; ++j) row[j + 2] = ar_left(b, row[j + 2], row[j], row[j + 1]);
  }
}

// Factor that takes a perturbation of the given norm to eps (1 when unscaled; a zero
// norm leaves the zeros as they are rather than making NaN).
PK_HD float ar_scale(const ArParams& p, double norm) {
  if (p.norm == ArNorm::None || !(norm > 0.0)) return 1.0f;
  return static_cast<float>(p.eps / norm);
}

// The poisoned pixel: image (read in [0,1] units) plus perturbation, clamped to [0,1]
// and rounded to nearest for uint8.
template <typename T>
PK_HD void ar_add_at(const T* image, const float* delta, T* out, int64_t i) {
  store_unit(to_unit(image[i]) + delta[i], out + i, StoreMode{0.5f, true});
}

// Valid response of the AR filter of one class at output pixel (y, x) of a C-channel image
// read through load(c, a, b) (in [0,1] units), summed over channels.
template <typename Load>
PK_HD float ar_filter_at(const float* coeffs_k, int channels, const Load& load) {
  float acc = 0.0f;
  for (int c = 0; c < channels; ++c) {
    const float* b = coeffs_k + c * kArTaps;
    for (int t = 0; t < 8; ++t) acc += b[t] * load(c, t / 3, t % 3);
    acc -= load(c, 2, 2);
  }
  return acc;
}

// ---- Validation shared by the torch ops and the DALI operator (a message, empty when
// fine, that each binding prefixes with the name it gives the argument).
// Canvas draws are numbered with 32-bit Philox block counters (4 draws per block).
constexpr int64_t kArMaxCanvasDraws = int64_t{1} << 33;

inline std::string ar_eps_error(double eps) {
  if (std::isfinite(eps) && eps > 0.0) return "";
  return "eps must be a positive finite number, got " + std::to_string(eps);
}

inline std::string ar_p_error(double p) {
  if (p == 2.0 || p == std::numeric_limits<double>::infinity()) return "";
  return "p must be 2 or inf, got " + std::to_string(p);
}

// A canvas of channels x canvas_h x canvas_w draws (sizes >= 1) must fit the counters and
// the kernels' int; the product is checked by division so that it cannot overflow.
inline std::string ar_canvas_error(int64_t channels, int64_t canvas_h, int64_t canvas_w) {
  constexpr int64_t kMaxSide = std::numeric_limits<int32_t>::max();
  const bool fits = channels <= kMaxSide && canvas_h <= kMaxSide && canvas_w <= kMaxSide &&
                    canvas_h <= (kArMaxCanvasDraws - 1) / channels &&
                    canvas_w <= (kArMaxCanvasDraws - 1) / (channels * canvas_h);
  if (fits) return "";
  return "canvas of " + std::to_string(channels) + "x" + std::to_string(canvas_h) + "x" +
         std::to_string(canvas_w) + " is too large (at most 2^33 draws per sample)";
}

// ---- CPU driver (ar_cpu.cpp): one sample per call, so torch can run it inside
// at::parallel_for and DALI on its thread pool. scratch holds ar_cpu_scratch_floats(p)
// floats for generation, C*H*W floats for filtering.
size_t ar_cpu_scratch_floats(const ArParams& p);

// The perturbation of one sample (its class's coefficients, its index) into out [C, H, W].
// Returns false when a scaled perturbation is not finite (an unstable class's process
// overflowed float32); unscaled output is returned as it is.
bool ar_generate_sample_cpu(const float* coeffs_k, uint64_t index, const ArParams& p,
                            float* out, float* scratch);

// Poisons one image [C, H, W]: out = image + its perturbation (see ar_add_at). scratch
// holds ar_poison_cpu_scratch_floats(p) floats. Returns false as ar_generate_sample_cpu.
size_t ar_poison_cpu_scratch_floats(const ArParams& p);

template <typename T>
bool ar_poison_sample_cpu(const T* image, T* out, const float* coeffs_k, uint64_t index,
                          const ArParams& p, float* scratch);

// The whole canvas [C, Hc, Wc] of draws of one sample (for tests and references).
void ar_canvas_sample_cpu(uint64_t index, const ArParams& p, float* out);

// AR filter responses of one image [C, H, W] for all K classes: out [K, H-2, W-2].
template <typename T>
void ar_filter_image_cpu(const T* image, const float* coeffs, int num_classes, int channels,
                         int height, int width, float* out, float* scratch);

// Per-sample status of a generation, as the drivers' flags hold it: kArOk, kArOverflow when
// the scaled perturbation is not finite (the CPU drivers report only these two), or, from
// the CUDA driver with p.num_classes > 0, kArBadLabel / kArBadIndex (checked first; such a
// sample is not generated and its output is undefined).
enum ArStatus : uint8_t { kArOverflow = 0, kArOk = 1, kArBadLabel = 2, kArBadIndex = 3 };

#if defined(POISONKIT_WITH_CUDA)
// ---- CUDA driver (ar_cuda.cu): whole batches on one stream.
}  // namespace poisonkit
#include <cuda_runtime_api.h>
namespace poisonkit {
size_t ar_cuda_scratch_floats(const ArParams& p, int64_t n);

// finite[n] receives sample n's ArStatus (see above).

cudaError_t ar_generate_cuda(const float* coeffs, const int64_t* labels, const int64_t* indices,
                             int64_t n, const ArParams& p, float* out, uint8_t* finite,
                             float* scratch, cudaStream_t stream);

// Poisons a batch x [N, C, H, W]: the perturbations go to scratch (the first
// N*C*H*W floats, the canvases after them), then are added.
size_t ar_poison_cuda_scratch_floats(const ArParams& p, int64_t n);

template <typename T>
cudaError_t ar_poison_cuda(const T* x, T* out, const float* coeffs, const int64_t* labels,
                           const int64_t* indices, int64_t n, const ArParams& p, uint8_t* finite,
                           float* scratch, cudaStream_t stream);

cudaError_t ar_canvas_cuda(const int64_t* indices, int64_t n, const ArParams& p, float* out,
                           cudaStream_t stream);

template <typename T>
cudaError_t ar_filter_cuda(const T* x, const float* coeffs, int64_t n, int num_classes,
                           int channels, int height, int width, float* out,
                           cudaStream_t stream);
#endif

}  // namespace poisonkit
