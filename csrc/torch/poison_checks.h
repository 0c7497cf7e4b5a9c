// Argument checks shared by the per-sample poison ops (lsp_*, one_pixel_*): labels and
// sample indices, float tables. ar.cpp holds private copies of min_max / all_finite (the
// csrc validation refactor folds them here).
#pragma once
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

namespace poisonkit {

// Min and max of a non-empty int64 tensor; CPU tensors are scanned directly (a DataLoader
// calls the ops once per sample, where torch reductions cost more than the op).
inline std::pair<int64_t, int64_t> int64_min_max(const at::Tensor& t) {
  if (!t.is_cpu()) return {t.min().item<int64_t>(), t.max().item<int64_t>()};
  const at::Tensor c = t.contiguous();
  const int64_t* v = c.data_ptr<int64_t>();
  int64_t lo = v[0], hi = v[0];
  for (int64_t i = 1; i < c.numel(); ++i) {
    lo = std::min(lo, v[i]);
    hi = std::max(hi, v[i]);
  }
  return {lo, hi};
}

// All values finite and in [lo, hi]. CPU float32 tensors are scanned on the bits (an
// integer reduction the compiler vectorises): a class table is checked on every call.
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

// labels: int64 [n] in [0, num_classes), on `device`.
inline void check_labels(const at::Tensor& labels, int64_t n, int64_t num_classes,
                         const at::Device& device, const char* op) {
  TORCH_CHECK(labels.scalar_type() == at::kLong, op, ": labels must be int64, got ",
              labels.scalar_type());
  TORCH_CHECK(labels.dim() == 1 && labels.size(0) == n, op, ": labels must be [N] with N = ", n,
              ", got shape ", labels.sizes());
  TORCH_CHECK(labels.device() == device, op, ": labels must be on ", device, ", got ",
              labels.device());
  TORCH_CHECK(n > 0, op, ": labels is an empty batch (N = 0)");
  const auto [lo, hi] = int64_min_max(labels);
  TORCH_CHECK(lo >= 0 && hi < num_classes, op, ": labels must be in [0, ", num_classes,
              "), got values in [", lo, ", ", hi, "]");
}

// indices: int64 [N] >= 0 with N >= 1, on `device`; returns N.
inline int64_t check_sample_indices(const at::Tensor& indices, const at::Device& device,
                                    const char* op) {
  TORCH_CHECK(indices.scalar_type() == at::kLong, op, ": indices must be int64, got ",
              indices.scalar_type());
  TORCH_CHECK(indices.dim() == 1, op, ": indices must be 1-D [N], got shape ", indices.sizes());
  TORCH_CHECK(indices.device() == device, op, ": indices must be on ", device, ", got ",
              indices.device());
  TORCH_CHECK(indices.size(0) > 0, op, ": indices is an empty batch (N = 0)");
  const int64_t lowest = int64_min_max(indices).first;
  TORCH_CHECK(lowest >= 0, op, ": indices must be >= 0, got ", lowest);
  return indices.size(0);
}

// x: uint8 or float32 NCHW.
inline void check_images(const at::Tensor& x, const char* op) {
  TORCH_CHECK(x.dim() == 4, op, ": x must be an NCHW batch (4 dims), got shape ", x.sizes());
  TORCH_CHECK(x.scalar_type() == at::kByte || x.scalar_type() == at::kFloat, op,
              ": x must be uint8 or float32, got ", x.scalar_type());
  TORCH_CHECK(x.size(0) > 0, op, ": x is an empty batch (N = 0)");
}

}  // namespace poisonkit
