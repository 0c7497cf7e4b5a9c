// Validates the arguments of poisonkit::rsk_kernels (shared by the CPU and CUDA
// implementations, so both refuse bad input with the same messages).
#pragma once
#include <ATen/ATen.h>

#include "../kernels/rsk.h"

namespace poisonkit {

// seed: one int64 value (read back, as uint64); indices: int64 [N] (N >= 0), >= 0 (scanned
// on the CPU only); epoch, center, std as rsk.h's validation says. Returns the seed.
uint64_t check_rsk_args(const at::Tensor& seed, const at::Tensor& indices, int64_t epoch,
                        double center, double stddev);

}  // namespace poisonkit
