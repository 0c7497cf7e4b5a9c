// poisonkit::rsk_kernels, CUDA implementation: validates, then launches the shared CUDA
// driver on the current stream (no host sync unless the seed lives on the GPU: indices
// are not read back).
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "checks.h"
#include "rsk_args.h"
#include "registration.h"

namespace poisonkit {

namespace {

at::Tensor rsk_kernels_cuda_impl(const at::Tensor& seed_in, const at::Tensor& indices_in,
                                 int64_t epoch, double center, double stddev) {
  const uint64_t seed = check_rsk_args(seed_in, indices_in, epoch, center, stddev);
  const c10::cuda::CUDAGuard guard(indices_in.device());
  const at::Tensor indices = indices_in.contiguous();
  const int64_t n = indices.size(0);
  at::Tensor out = at::empty({n, 3, 3}, indices.options().dtype(at::kFloat));
  check_launch(rsk_kernels_cuda(seed, indices.data_ptr<int64_t>(), n,
                                static_cast<uint64_t>(epoch), static_cast<float>(center),
                                static_cast<float>(stddev), out.data_ptr<float>(),
                                c10::cuda::getCurrentCUDAStream()),
               "rsk_kernels");
  return out;
}

}  // namespace

POISONKIT_IMPL_OPS(CUDA, "rsk_kernels", &rsk_kernels_cuda_impl)

}  // namespace poisonkit
