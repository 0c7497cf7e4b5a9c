// Parses and validates the arguments of the poisonkit AR ops (ar_canvas, ar_generate,
// ar_filter), shared by the CPU and CUDA implementations so both refuse bad input with the
// same messages.
#pragma once
#include <ATen/ATen.h>

#include <optional>

#include "../kernels/ar.h"

namespace poisonkit {

// ar_generate: coeffs [K, C, 3, 3] float32 finite; labels, indices int64 [N] on coeffs'
// device, labels in [0, K), indices >= 0; eps > 0 finite (or none: unscaled); p 2 or inf.
ArParams ar_generate_params(const at::Tensor& coeffs, const at::Tensor& labels,
                            const at::Tensor& indices, int64_t key, int64_t height,
                            int64_t width, int64_t crop, std::optional<double> eps, double p);

// ar_poison: x uint8 or float32 [N, C, H, W] on coeffs' device, C = coeffs' channels,
// N = len(indices); the rest as ar_generate at x's height and width.
ArParams ar_poison_params(const at::Tensor& x, const at::Tensor& coeffs, const at::Tensor& labels,
                          const at::Tensor& indices, int64_t key, int64_t crop, double eps,
                          double p);

// Scaled perturbations must be finite: an unstable class's process overflows float32
// (the reference once shipped such a class, which produced black images). finite: uint8
// [N], 0 for a sample whose perturbation is not.
void check_ar_finite(const at::Tensor& finite, const at::Tensor& labels,
                     const at::Tensor& indices, int64_t num_classes);

// ar_canvas: indices int64 [N] >= 0; channels, height, width >= 1 (the canvas size).
ArParams ar_canvas_params(const at::Tensor& indices, int64_t key, int64_t channels,
                          int64_t height, int64_t width);

// ar_filter: x uint8 or float32 NCHW with H, W >= 3; coeffs [K, C, 3, 3] matching C.
void check_ar_filter_args(const at::Tensor& x, const at::Tensor& coeffs);

}  // namespace poisonkit
