// poisonkit::rsk_kernels: the RSK sharpening kernels of (seed, sample indices, epoch), the
// same Philox draws as the DALI operator sharpen (kernels/rsk.h). Schema, validation and
// the CPU implementation. The seed is a tensor, not an int: a seed drawn from torch's RNG
// inside a compiled transform then stays in the graph (an int would be a graph break).

#include "checks.h"
#include "rsk_args.h"
#include "registration.h"

namespace poisonkit {

uint64_t check_rsk_args(const at::Tensor& seed, const at::Tensor& indices, int64_t epoch,
                        double center, double stddev) {
  TORCH_CHECK(seed.scalar_type() == at::kLong && seed.numel() == 1,
              "rsk_kernels: seed must be one int64 value (a 0-dim tensor), got ",
              seed.scalar_type(), " with shape ", seed.sizes());
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
  return static_cast<uint64_t>(seed.item<int64_t>());
}

namespace {

at::Tensor rsk_kernels_cpu_impl(const at::Tensor& seed_in, const at::Tensor& indices_in,
                                int64_t epoch, double center, double stddev) {
  const uint64_t seed = check_rsk_args(seed_in, indices_in, epoch, center, stddev);
  const at::Tensor indices = indices_in.contiguous();
  const int64_t n = indices.size(0);
  at::Tensor out = at::empty({n, 3, 3}, indices.options().dtype(at::kFloat));
  rsk_kernels_cpu(seed, indices.data_ptr<int64_t>(), n,
                  static_cast<uint64_t>(epoch), static_cast<float>(center),
                  static_cast<float>(stddev), out.data_ptr<float>());
  return out;
}

}  // namespace

POISONKIT_DEFINE_OPS("rsk_kernels(Tensor seed, Tensor indices, int epoch, float center, "
                     "float std) -> Tensor")
POISONKIT_IMPL_OPS(CPU, "rsk_kernels", &rsk_kernels_cpu_impl)

}  // namespace poisonkit
