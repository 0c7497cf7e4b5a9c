// Image layouts of the DALI operators. The shared kernels work on planar (CHW) images;
// DALI usually hands interleaved HWC ones, so the operators copy HWC <-> CHW around the
// kernel call (one extra pass over the image each way; CHW input needs none on the CPU).
#pragma once
#include <compare>
#include <cstdint>

#include "../kernels/common.h"

namespace poisonkit::dali_ops {

// Planar geometry of one image.
struct PlanarShape {
  int c = 0, h = 0, w = 0;
  PK_HD int64_t volume() const { return static_cast<int64_t>(c) * h * w; }
  auto operator<=>(const PlanarShape&) const = default;
};

enum class ImageLayout { HWC, CHW };

// Element (c, y, x) of an image lives at index c * c_stride + y * y_stride + x * x_stride.
struct Strides {
  int64_t c, y, x;
};

inline Strides strides_of(ImageLayout layout, const PlanarShape& s) {
  if (layout == ImageLayout::CHW) return {static_cast<int64_t>(s.h) * s.w, s.w, 1};
  return {1, static_cast<int64_t>(s.w) * s.c, s.c};
}

// Copies an image with the given strides into a contiguous CHW buffer.
template <typename T>
void to_planar(const T* __restrict__ src, const PlanarShape& s, const Strides& st,
               T* __restrict__ dst) {
  for (int c = 0; c < s.c; ++c)
    for (int y = 0; y < s.h; ++y) {
      const T* row = src + c * st.c + y * st.y;
      for (int x = 0; x < s.w; ++x) *dst++ = row[x * st.x];
    }
}

// Copies a contiguous CHW buffer into an image with the given strides.
template <typename T>
void from_planar(const T* __restrict__ src, const PlanarShape& s, const Strides& st,
                 T* __restrict__ dst) {
  for (int c = 0; c < s.c; ++c)
    for (int y = 0; y < s.h; ++y) {
      T* row = dst + c * st.c + y * st.y;
      for (int x = 0; x < s.w; ++x) row[x * st.x] = *src++;
    }
}

}  // namespace poisonkit::dali_ops

#if defined(POISONKIT_WITH_CUDA)
#include <cuda_runtime_api.h>
namespace poisonkit::dali_ops {
// GPU versions over a group of n same-shaped samples given by device pointer arrays:
// gather n strided images into one contiguous NCHW buffer, scatter one back.
template <typename T>
cudaError_t gather_planar_cuda(const T* const* srcs, T* dst, int n, const PlanarShape& s,
                               const Strides& st, cudaStream_t stream);
template <typename T>
cudaError_t scatter_planar_cuda(const T* src, T* const* dsts, int n, const PlanarShape& s,
                                const Strides& st, cudaStream_t stream);
}  // namespace poisonkit::dali_ops
#endif
