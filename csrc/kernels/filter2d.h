// Per-sample depthwise 2-D filter: one kernel per image (shared by its channels) or one
// per (image, channel). Serves the CUDA class-wise blur poison (kernel chosen by label,
// output divided by the image's global max) and SSK/RSK sharpening.
//
// The math lives here once; filter2d_cpu.cpp and filter2d_cuda.cu only move data.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common.h"

namespace poisonkit {

constexpr int kFilter2dMaxKernel = 7;

// Geometry and options of one filter2d call; identical for every image of a batch.
struct Filter2dParams {
  int channels = 0;        // C
  int height = 0;          // H
  int width = 0;           // W
  int kernel_h = 0;        // odd, 1..7
  int kernel_w = 0;        // odd, 1..7
  int weight_channels = 1; // 1 (kernel shared by channels) or C
  Padding padding = Padding::Zeros;
  bool normalize_max = false;  // divide each image by its global max over C, H, W
  Rounding rounding = Rounding::Nearest;
  bool clamp = true;       // float output: clamp to [0,1]

  PK_HD int pad_h() const { return padding == Padding::Valid ? 0 : kernel_h / 2; }
  PK_HD int pad_w() const { return padding == Padding::Valid ? 0 : kernel_w / 2; }
  PK_HD int out_h() const { return padding == Padding::Valid ? height - kernel_h + 1 : height; }
  PK_HD int out_w() const { return padding == Padding::Valid ? width - kernel_w + 1 : width; }
  PK_HD int taps() const { return kernel_h * kernel_w; }
  PK_HD StoreMode store() const { return store_mode(rounding, clamp); }
  // Kernel of (image n, channel c) inside a weights array of N * weight_channels kernels.
  PK_HD const float* kernel_of(const float* weights, int64_t n, int c) const {
    return weights + (n * weight_channels + (weight_channels == 1 ? 0 : c)) * taps();
  }
};

// Cross-correlation (as torch.conv2d) of a padded tile with one kernel, taps summed in
// raster order. load(a, b) returns the padded input at kernel offset (a, b) in [0,1] units.
template <int KH, int KW, typename Load>
PK_HD float filter_at(const Load& load, const float* kernel) {
  float acc = 0.0f;
#if defined(__CUDACC__)
#pragma unroll
#endif
  for (int a = 0; a < KH; ++a) {
#if defined(__CUDACC__)
#pragma unroll
#endif
    for (int b = 0; b < KW; ++b) acc += kernel[a * KW + b] * load(a, b);
  }
  return acc;
}

// Divides by the image max when asked (an all-zero or negative max leaves values as they
// are: the reference would produce NaN there). The image max is NaN when any filtered value
// of the image is not finite (the max of such values is undefined; common.h's non-finite
// rule), and then the whole image is NaN, on every backend.
PK_HD float normalize_by(float v, float image_max) {
  return image_max > 0.0f ? v / image_max : v + (image_max - image_max);
}

// Calls f.template operator()<KH, KW>() with the runtime kernel size as template
// arguments, so that every supported size gets a fully unrolled filter_at.
template <typename F>
bool dispatch_kernel_size(int kh, int kw, F&& f) {
#define PK_KW_CASES(KH)                                  \
  switch (kw) {                                          \
    case 1: f.template operator()<KH, 1>(); return true; \
    case 3: f.template operator()<KH, 3>(); return true; \
    case 5: f.template operator()<KH, 5>(); return true; \
    case 7: f.template operator()<KH, 7>(); return true; \
    default: return false;                               \
  }
  switch (kh) {
    case 1: PK_KW_CASES(1)
    case 3: PK_KW_CASES(3)
    case 5: PK_KW_CASES(5)
    case 7: PK_KW_CASES(7)
    default: return false;
  }
#undef PK_KW_CASES
}

// ---- Validation, shared by the torch op and the DALI operators: a message (empty when
// fine) that each binding prefixes with the name it gives the argument.
constexpr const char* kFilter2dPaddings = "'zeros', 'reflect', 'replicate' or 'valid'";

inline bool parse_padding(std::string_view s, Padding* padding) {
  if (s == "zeros") *padding = Padding::Zeros;
  else if (s == "reflect") *padding = Padding::Reflect;
  else if (s == "replicate") *padding = Padding::Replicate;
  else if (s == "valid") *padding = Padding::Valid;
  else return false;
  return true;
}

inline std::string filter2d_kernel_size_error(int64_t kh, int64_t kw) {
  if (kh >= 1 && kw >= 1 && kh % 2 == 1 && kw % 2 == 1 && kh <= kFilter2dMaxKernel &&
      kw <= kFilter2dMaxKernel)
    return "";
  return "kernel size must be odd and at most " + std::to_string(kFilter2dMaxKernel) + ", got " +
         std::to_string(kh) + "x" + std::to_string(kw);
}

// The image size the padding needs (p's geometry and options filled in).
inline std::string filter2d_padding_error(const Filter2dParams& p) {
  const std::string size = std::to_string(p.height) + "x" + std::to_string(p.width);
  if (p.padding == Padding::Valid && (p.height < p.kernel_h || p.width < p.kernel_w))
    return "padding='valid' needs images of at least " + std::to_string(p.kernel_h) + "x" +
           std::to_string(p.kernel_w) + ", got " + size;
  if (p.padding == Padding::Reflect && (p.height <= p.kernel_h / 2 || p.width <= p.kernel_w / 2))
    return "padding='reflect' needs images larger than half the kernel (" +
           std::to_string(p.kernel_h / 2) + "x" + std::to_string(p.kernel_w / 2) + "), got " + size;
  return "";
}

// ---- CPU driver (filter2d_cpu.cpp): one image per call, so torch can run it inside
// at::parallel_for and DALI on its thread pool.
size_t filter2d_cpu_scratch_floats(const Filter2dParams& p);

template <typename T>
void filter2d_image_cpu(const T* in, T* out, const float* weights, int64_t n,
                        const Filter2dParams& p, float* scratch);

#if defined(POISONKIT_WITH_CUDA)
// ---- CUDA driver (filter2d_cuda.cu): a whole batch on one stream. scratch must hold
// filter2d_cuda_scratch_floats(p, n) floats (only used when normalize_max).
}  // namespace poisonkit
#include <cuda_runtime_api.h>
namespace poisonkit {
size_t filter2d_cuda_scratch_floats(const Filter2dParams& p, int64_t n);

template <typename T>
cudaError_t filter2d_cuda(const T* in, T* out, const float* weights, int64_t n,
                          const Filter2dParams& p, float* scratch, cudaStream_t stream);
#endif

}  // namespace poisonkit
