// Argument checks shared by every poisonkit torch op, so that all refuse bad input with the
// same messages. None of them synchronises with a GPU: values (finiteness, ranges) are only
// scanned on CPU tensors; on CUDA the non-finite rule of kernels/common.h applies and the
// Python layer validates matrices once, when it caches them.
#pragma once
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#if defined(POISONKIT_WITH_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace poisonkit {

// Turns a kernel-side validation message (kernels/*.h, empty when fine) into an error.
inline void check_kernel_args(const std::string& error, const char* op) {
  TORCH_CHECK(error.empty(), op, ": ", error);
}

// x: an NCHW batch of uint8 or float32 images with N, C, H, W >= 1.
inline void check_image_batch(const at::Tensor& x, const char* op) {
  TORCH_CHECK(x.dim() == 4, op, ": x must be an NCHW batch (4 dims), got ", x.dim(),
              " dims with shape ", x.sizes());
  TORCH_CHECK(x.scalar_type() == at::kByte || x.scalar_type() == at::kFloat, op,
              ": x must be uint8 or float32, got ", x.scalar_type());
  TORCH_CHECK(x.size(0) > 0, op, ": x is an empty batch (N = 0)");
  TORCH_CHECK(x.size(1) > 0 && x.size(2) > 0 && x.size(3) > 0, op,
              ": x must have at least one channel and pixel, got shape ", x.sizes());
}

// `name` must live on x's device.
inline void check_same_device(const at::Tensor& t, const at::Tensor& x, const char* op,
                              const char* name) {
  TORCH_CHECK(t.device() == x.device(), op, ": ", name, " must be on x's device (", x.device(),
              "), got ", t.device());
}

// A float32 parameter tensor (weights, bases, Q, coefficients) must be finite. CPU tensors
// are scanned directly (an ATen reduction costs more than filtering a 32x32 image); CUDA
// ones are not read back (that would sync every call): see the top of this file.
inline void check_finite_param(const at::Tensor& t, const char* op, const char* name) {
  if (!t.is_cpu()) return;
  const at::Tensor c = t.contiguous();
  const float* v = c.data_ptr<float>();
  const bool finite = std::all_of(v, v + c.numel(), [](float f) { return std::isfinite(f); });
  TORCH_CHECK(finite, op, ": ", name, " contains NaN or inf");
}

// Min and max of a non-empty int64 tensor (CPU tensors scanned directly, as above; CUDA
// ones read back, one sync).
inline std::pair<int64_t, int64_t> min_max(const at::Tensor& t) {
  if (!t.is_cpu()) return {t.min().item<int64_t>(), t.max().item<int64_t>()};
  const at::Tensor c = t.contiguous();
  const int64_t* v = c.data_ptr<int64_t>();
  const auto [lo, hi] = std::minmax_element(v, v + c.numel());
  return {*lo, *hi};
}

// Calls f.template operator()<T>() with T = uint8_t or float, x's dtype (checked before).
template <typename F>
void dispatch_image_dtype(const at::Tensor& x, F&& f) {
  if (x.scalar_type() == at::kByte) {
    f.template operator()<uint8_t>();
  } else {
    f.template operator()<float>();
  }
}

#if defined(POISONKIT_WITH_CUDA)
// A failed launch, with a hint when the GPU is older than the architectures built.
inline void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA launch failed: ", cudaGetErrorString(err),
              err == cudaErrorNoKernelImageForDevice
                  ? " (poisonkit's CUDA kernels are built for compute capability 7.5 to 9.0 "
                    "and newer through PTX; rebuild with TORCH_CUDA_ARCH_LIST naming this GPU's)"
                  : "");
}
#endif

}  // namespace poisonkit
