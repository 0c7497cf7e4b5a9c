// Validates the arguments of poisonkit::project_out (shared by the CPU and CUDA
// implementations, so both refuse bad input with the same messages) and prepares Q^T.
#pragma once
#include <ATen/ATen.h>

#include "../kernels/projection.h"

namespace poisonkit {

ProjectionParams projection_params(const at::Tensor& x, const at::Tensor& Q, bool clamp);

// Q^T as a contiguous K x D tensor (free when Q is itself the transpose of one).
at::Tensor projection_qt(const at::Tensor& Q);

// Output dtype: float32, or x's dtype when clamping (uint8 rounded and saturated).
at::ScalarType projection_out_dtype(const at::Tensor& x, bool clamp);

}  // namespace poisonkit
