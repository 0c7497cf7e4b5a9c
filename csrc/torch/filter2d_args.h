// Parses and validates the arguments of poisonkit::filter2d (shared by the CPU and CUDA
// implementations) so that both refuse bad input with the same messages.
#pragma once
#include <ATen/ATen.h>

#include "../kernels/filter2d.h"

namespace poisonkit {

Filter2dParams filter2d_params(const at::Tensor& x, const at::Tensor& weights,
                               c10::string_view padding, c10::string_view normalize,
                               c10::string_view rounding, bool clamp);

}  // namespace poisonkit
