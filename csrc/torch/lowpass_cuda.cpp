// poisonkit::lowpass, CUDA implementation: validates, then launches the shared CUDA driver
// on the current stream.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "checks.h"
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
  dispatch_image_dtype(x, [&]<typename T>() {
    check_launch(lowpass_cuda<T>(x.data_ptr<T>(), out.data_ptr<T>(), rows.data_ptr<float>(),
                                 cols.data_ptr<float>(), mask_ptr, n, p,
                                 scratch.data_ptr<float>(), stream),
                 "lowpass");
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(poisonkit, CUDA, m) { m.impl("lowpass", &lowpass_cuda_impl); }

}  // namespace poisonkit
