// poisonkit::filter2d, CUDA implementation: validates, then launches the shared CUDA
// driver on the current stream.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "checks.h"
#include "filter2d_args.h"
#include "registration.h"

namespace poisonkit {

namespace {

at::Tensor filter2d_cuda_impl(const at::Tensor& x_in, const at::Tensor& weights_in,
                              c10::string_view padding, c10::string_view normalize,
                              c10::string_view rounding, bool clamp) {
  const Filter2dParams p = filter2d_params(x_in, weights_in, padding, normalize, rounding, clamp);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const at::Tensor weights = weights_in.contiguous();
  const int64_t n = x.size(0);
  at::Tensor out = at::empty({n, p.channels, p.out_h(), p.out_w()}, x.options());
  at::Tensor scratch = at::empty({static_cast<int64_t>(filter2d_cuda_scratch_floats(p, n))},
                                 x.options().dtype(at::kFloat));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  dispatch_image_dtype(x, [&]<typename T>() {
    check_launch(filter2d_cuda<T>(x.data_ptr<T>(), out.data_ptr<T>(), weights.data_ptr<float>(),
                                  n, p, scratch.data_ptr<float>(), stream),
                 "filter2d");
  });
  return out;
}

}  // namespace

POISONKIT_IMPL_OPS(CUDA, "filter2d", &filter2d_cuda_impl)

}  // namespace poisonkit
