// Argument checks shared by every poisonkit torch op, each written once, so that all refuse
// bad input with the same messages. Values (finiteness, ranges) are scanned directly on CPU
// tensors (an ATen reduction costs more than the op on one sample); on CUDA, filter weights and
// bases are not read back (check_finite_param: the non-finite rule of kernels/common.h applies
// and the Python layer validates matrices once, when it caches them), while labels, sample
// indices and poison tables are (one sync: a wrong class would index out of bounds).
#pragma once
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <limits>
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

// Whether every value of a float32 tensor is finite and in [lo, hi]. CPU tensors are scanned
// on the bits (an integer reduction the compiler vectorises); CUDA ones read back (one sync).
inline bool float_all_within(const at::Tensor& t, float lo, float hi) {
  if (!t.is_cpu()) {
    return at::isfinite(t).all().item<bool>() && (t >= lo).all().item<bool>() &&
           (t <= hi).all().item<bool>();
  }
  const at::Tensor c = t.contiguous();
  const float* v = c.data_ptr<float>();
  const uint32_t* bits = reinterpret_cast<const uint32_t*>(v);
  int64_t bad = 0;
  for (int64_t i = 0; i < c.numel(); ++i) {
    bad += (bits[i] & 0x7f800000u) == 0x7f800000u;  // inf or NaN
    bad += (v[i] < lo) | (v[i] > hi);
  }
  return bad == 0;
}

inline bool float_all_finite(const at::Tensor& t) {
  constexpr float kMax = std::numeric_limits<float>::max();
  return float_all_within(t, -kMax, kMax);
}

// A float32 parameter tensor (weights, bases, Q, coefficients) must be finite; CUDA ones are
// not read back (that would sync every call): see the top of this file.
inline void check_finite_param(const at::Tensor& t, const char* op, const char* name) {
  if (!t.is_cpu()) return;
  TORCH_CHECK(float_all_finite(t), op, ": ", name, " contains NaN or inf");
}

// Min and max of a non-empty int64 tensor (CPU tensors scanned directly; CUDA ones read
// back, one sync).
inline std::pair<int64_t, int64_t> min_max(const at::Tensor& t) {
  if (!t.is_cpu()) return {t.min().item<int64_t>(), t.max().item<int64_t>()};
  const at::Tensor c = t.contiguous();
  const int64_t* v = c.data_ptr<int64_t>();
  const auto [lo, hi] = std::minmax_element(v, v + c.numel());
  return {*lo, *hi};
}

// indices: int64 [N] >= 0 with N >= 1 (the samples' positions in their dataset, which pick
// their random draws), on `device`; returns N. scan = false skips the value check (a host
// sync on CUDA) for kernels that check the values themselves.
inline int64_t check_sample_indices(const at::Tensor& indices, const at::Device& device,
                                    const char* op, bool scan = true) {
  TORCH_CHECK(indices.scalar_type() == at::kLong, op, ": indices must be int64, got ",
              indices.scalar_type());
  TORCH_CHECK(indices.dim() == 1, op, ": indices must be 1-D [N], got shape ", indices.sizes());
  TORCH_CHECK(indices.device() == device, op, ": indices must be on ", device, ", got ",
              indices.device());
  TORCH_CHECK(indices.size(0) > 0, op, ": indices is an empty batch (N = 0)");
  if (!scan) return indices.size(0);
  const int64_t lowest = min_max(indices).first;
  TORCH_CHECK(lowest >= 0, op, ": indices must be >= 0, got ", lowest);
  return indices.size(0);
}

// labels: int64 [n] in [0, num_classes), on `device` (scan: as in check_sample_indices).
inline void check_labels(const at::Tensor& labels, int64_t n, int64_t num_classes,
                         const at::Device& device, const char* op, bool scan = true) {
  TORCH_CHECK(labels.scalar_type() == at::kLong, op, ": labels must be int64, got ",
              labels.scalar_type());
  TORCH_CHECK(labels.dim() == 1 && labels.size(0) == n, op, ": labels must be [N] with N = ", n,
              ", got shape ", labels.sizes());
  TORCH_CHECK(labels.device() == device, op, ": labels must be on ", device, ", got ",
              labels.device());
  TORCH_CHECK(n > 0, op, ": labels is an empty batch (N = 0)");
  if (!scan) return;
  const auto [lo, hi] = min_max(labels);
  TORCH_CHECK(lo >= 0 && hi < num_classes, op, ": labels must be in [0, ", num_classes,
              "), got values in [", lo, ", ", hi, "]");
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
