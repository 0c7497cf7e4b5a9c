// poisonkit::rsk_kernels: the RSK sharpening kernels of (seed, sample indices, epoch), the
// same Philox draws as the DALI operator sharpen (kernels/rsk.h). Schema, validation and
// the CPU implementation.
#include <torch/library.h>

#include "checks.h"
#include "rsk_args.h"

namespace poisonkit {

void check_rsk_args(const at::Tensor& indices, int64_t epoch, double center, double stddev) {
  TORCH_CHECK(indices.scalar_type() == at::kLong, "rsk_kernels: indices must be int64, got ",
              indices.scalar_type());
  TORCH_CHECK(indices.dim() == 1, "rsk_kernels: indices must be 1-D [N], got shape ",
              indices.sizes());
  check_kernel_args(rsk_params_error(center, stddev), "rsk_kernels");
  check_kernel_args(rsk_epoch_error(epoch), "rsk_kernels");
  if (indices.is_cpu() && indices.numel() > 0) {
    const int64_t lowest = min_max(indices).first;
    TORCH_CHECK(lowest >= 0, "rsk_kernels: indices must be >= 0, got ", lowest);
  }
}

namespace {

at::Tensor rsk_kernels_cpu_impl(int64_t seed, const at::Tensor& indices_in, int64_t epoch,
                                double center, double stddev) {
  check_rsk_args(indices_in, epoch, center, stddev);
  const at::Tensor indices = indices_in.contiguous();
  const int64_t n = indices.size(0);
  at::Tensor out = at::empty({n, 3, 3}, indices.options().dtype(at::kFloat));
  rsk_kernels_cpu(static_cast<uint64_t>(seed), indices.data_ptr<int64_t>(), n,
                  static_cast<uint64_t>(epoch), static_cast<float>(center),
                  static_cast<float>(stddev), out.data_ptr<float>());
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(poisonkit, m) {
  m.def("rsk_kernels(int seed, Tensor indices, int epoch, float center, float std) -> Tensor");
}

TORCH_LIBRARY_IMPL(poisonkit, CPU, m) { m.impl("rsk_kernels", &rsk_kernels_cpu_impl); }

}  // namespace poisonkit
