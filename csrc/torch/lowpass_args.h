// Validates the arguments of poisonkit::lowpass (shared by the CPU and CUDA
// implementations) so that both refuse bad input with the same messages.
#pragma once
#include <ATen/ATen.h>

#include <optional>

#include "../kernels/lowpass.h"

namespace poisonkit {

LowpassParams lowpass_params(const at::Tensor& x, const at::Tensor& rows, const at::Tensor& cols,
                             const std::optional<at::Tensor>& mask, bool clamp);

}  // namespace poisonkit
