// Validates the arguments of the poisonkit one-pixel (OPS) ops, shared by the CPU and CUDA
// implementations so both refuse bad input with the same messages.
#pragma once
#include <ATen/ATen.h>

#include <tuple>

#include "../kernels/one_pixel.h"

namespace poisonkit {

// one_pixel_moments: x uint8 or float32 NCHW with 1 to 4 channels; labels int64 [N] in
// [0, num_classes) on x's device.
void check_one_pixel_moments_args(const at::Tensor& x, const at::Tensor& labels,
                                  int64_t num_classes);

// one_pixel_apply: x as above; labels int64 [N]; positions int64 [K] in [0, H W); colours
// float32 [K, C] in [0, 1]; all on x's device.
void check_one_pixel_apply_args(const at::Tensor& x, const at::Tensor& labels,
                                const at::Tensor& positions, const at::Tensor& colours);

// The zeroed moment outputs of one_pixel_moments (sums and squares float64 [K, C, H, W] on
// x's device) and the class counts int64 [K].
std::tuple<at::Tensor, at::Tensor, at::Tensor> one_pixel_moment_outputs(const at::Tensor& x,
                                                                        const at::Tensor& labels,
                                                                        int64_t num_classes);

}  // namespace poisonkit
