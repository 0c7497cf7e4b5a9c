// poisonkit::lowpass, CUDA implementation: validates, then launches the shared CUDA driver
// on the current stream.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "lowpass_args.h"

namespace poisonkit {

namespace {

at::Tensor lowpass_cuda_impl(const at::Tensor& x_in, const at::Tensor& rows_in,
                             const at::Tensor& cols_in, const std::optional<at::Tensor>& mask_in,
                             bool clamp) {
  const LowpassParams p = lowpass_params(x_in, rows_in, cols_in, mask_in, clamp);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const at::Tensor rows = rows_in.contiguous();
  const at::Tensor cols = cols_in.contiguous();
  const at::Tensor mask = mask_in.has_value() ? mask_in->contiguous() : at::Tensor();
  const float* mask_ptr = mask.defined() ? mask.data_ptr<float>() : nullptr;
  const int64_t n = x.size(0);
  at::Tensor out = at::empty(x.sizes(), x.options());
  at::Tensor scratch = at::empty({static_cast<int64_t>(lowpass_cuda_scratch_floats(p, n))},
                                 x.options().dtype(at::kFloat));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  cudaError_t err;
  if (x.scalar_type() == at::kByte) {
    err = lowpass_cuda<uint8_t>(x.data_ptr<uint8_t>(), out.data_ptr<uint8_t>(),
                                rows.data_ptr<float>(), cols.data_ptr<float>(), mask_ptr, n, p,
                                scratch.data_ptr<float>(), stream);
  } else {
    err = lowpass_cuda<float>(x.data_ptr<float>(), out.data_ptr<float>(), rows.data_ptr<float>(),
                              cols.data_ptr<float>(), mask_ptr, n, p, scratch.data_ptr<float>(),
                              stream);
  }
  TORCH_CHECK(err == cudaSuccess, "lowpass: CUDA launch failed: ", cudaGetErrorString(err));
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(poisonkit, CUDA, m) { m.impl("lowpass", &lowpass_cuda_impl); }

}  // namespace poisonkit
