// poisonkit::project_out, CUDA implementation: validates, then launches the shared CUDA
// driver on the current stream.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "checks.h"
#include "projection_args.h"

namespace poisonkit {

namespace {

at::Tensor project_out_cuda_impl(const at::Tensor& x_in, const at::Tensor& Q, bool clamp) {
  const ProjectionParams p = projection_params(x_in, Q, clamp);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const at::Tensor qt = projection_qt(Q);
  at::Tensor out = at::empty(x.sizes(), x.options().dtype(projection_out_dtype(x, clamp)));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const float* q = qt.data_ptr<float>();
  const int64_t n = x.size(0);
  cudaError_t err;
  if (x.scalar_type() == at::kFloat) {
    err = project_out_cuda<float, float>(x.data_ptr<float>(), out.data_ptr<float>(), n, q, p,
                                         stream);
  } else if (clamp) {
    err = project_out_cuda<uint8_t, uint8_t>(x.data_ptr<uint8_t>(), out.data_ptr<uint8_t>(), n, q,
                                             p, stream);
  } else {
    err = project_out_cuda<uint8_t, float>(x.data_ptr<uint8_t>(), out.data_ptr<float>(), n, q, p,
                                           stream);
  }
  check_launch(err, "project_out");
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(poisonkit, CUDA, m) { m.impl("project_out", &project_out_cuda_impl); }

}  // namespace poisonkit
