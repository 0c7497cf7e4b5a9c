// poisonkit AR ops, CUDA implementations: validate, then launch the shared CUDA drivers on
// the current stream. ar_generate and ar_poison sync with the host once per call: the
// per-sample status flags (overflow, label or index out of range) are read back after the
// launch; the range checks that ran on the host before are done by the kernels.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "ar_args.h"
#include "checks.h"
#include "registration.h"

namespace poisonkit {

namespace {

at::Tensor ar_generate_cuda_impl(const at::Tensor& coeffs_in, const at::Tensor& labels_in,
                                 const at::Tensor& indices_in, int64_t key, int64_t height,
                                 int64_t width, int64_t crop, std::optional<double> eps,
                                 double p) {
  ArParams params =
      ar_generate_params(coeffs_in, labels_in, indices_in, key, height, width, crop, eps, p);
  params.num_classes = coeffs_in.size(0);  // labels and indices checked on the device
  const c10::cuda::CUDAGuard guard(coeffs_in.device());
  const at::Tensor coeffs = coeffs_in.contiguous();
  const at::Tensor labels = labels_in.contiguous();
  const at::Tensor indices = indices_in.contiguous();
  const int64_t n = indices.size(0);
  at::Tensor out = at::empty({n, params.channels, height, width}, coeffs.options());
  at::Tensor scratch =
      at::empty({static_cast<int64_t>(ar_cuda_scratch_floats(params, n))}, coeffs.options());
  at::Tensor finite = at::empty({n}, coeffs.options().dtype(at::kByte));
  check_launch(ar_generate_cuda(coeffs.data_ptr<float>(), labels.data_ptr<int64_t>(),
                                indices.data_ptr<int64_t>(), n, params, out.data_ptr<float>(),
                                finite.data_ptr<uint8_t>(), scratch.data_ptr<float>(),
                                c10::cuda::getCurrentCUDAStream()),
               "ar_generate");
  check_ar_finite(finite, labels, indices, coeffs.size(0));
  return out;
}

at::Tensor ar_poison_cuda_impl(const at::Tensor& x_in, const at::Tensor& coeffs_in,
                               const at::Tensor& labels_in, const at::Tensor& indices_in,
                               int64_t key, int64_t crop, double eps, double p) {
  ArParams params =
      ar_poison_params(x_in, coeffs_in, labels_in, indices_in, key, crop, eps, p);
  params.num_classes = coeffs_in.size(0);  // labels and indices checked on the device
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const at::Tensor coeffs = coeffs_in.contiguous();
  const at::Tensor labels = labels_in.contiguous();
  const at::Tensor indices = indices_in.contiguous();
  const int64_t n = x.size(0);
  at::Tensor out = at::empty_like(x);
  at::Tensor finite = at::empty({n}, coeffs.options().dtype(at::kByte));
  at::Tensor scratch = at::empty(
      {static_cast<int64_t>(ar_poison_cuda_scratch_floats(params, n))}, coeffs.options());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  dispatch_image_dtype(x, [&]<typename T>() {
    check_launch(ar_poison_cuda<T>(x.data_ptr<T>(), out.data_ptr<T>(), coeffs.data_ptr<float>(),
                                   labels.data_ptr<int64_t>(), indices.data_ptr<int64_t>(), n,
                                   params, finite.data_ptr<uint8_t>(), scratch.data_ptr<float>(),
                                   stream),
                 "ar_poison");
  });
  check_ar_finite(finite, labels, indices, coeffs.size(0));
  return out;
}

at::Tensor ar_canvas_cuda_impl(const at::Tensor& indices_in, int64_t key, int64_t channels,
                               int64_t height, int64_t width) {
  const ArParams params = ar_canvas_params(indices_in, key, channels, height, width);
  const c10::cuda::CUDAGuard guard(indices_in.device());
  const at::Tensor indices = indices_in.contiguous();
  const int64_t n = indices.size(0);
  at::Tensor out = at::empty({n, channels, height, width}, indices.options().dtype(at::kFloat));
  check_launch(ar_canvas_cuda(indices.data_ptr<int64_t>(), n, params, out.data_ptr<float>(),
                              c10::cuda::getCurrentCUDAStream()),
               "ar_canvas");
  return out;
}

at::Tensor ar_filter_cuda_impl(const at::Tensor& x_in, const at::Tensor& coeffs_in) {
  check_ar_filter_args(x_in, coeffs_in);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const at::Tensor coeffs = coeffs_in.contiguous();
  const int K = static_cast<int>(coeffs.size(0)), C = static_cast<int>(x.size(1));
  const int H = static_cast<int>(x.size(2)), W = static_cast<int>(x.size(3));
  at::Tensor out = at::empty({x.size(0), K, H - 2, W - 2}, x.options().dtype(at::kFloat));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  dispatch_image_dtype(x, [&]<typename T>() {
    check_launch(ar_filter_cuda<T>(x.data_ptr<T>(), coeffs.data_ptr<float>(), x.size(0), K, C, H,
                                   W, out.data_ptr<float>(), stream),
                 "ar_filter");
  });
  return out;
}

}  // namespace

POISONKIT_IMPL_OPS(CUDA, "ar_canvas", &ar_canvas_cuda_impl, "ar_generate", &ar_generate_cuda_impl,
                   "ar_poison", &ar_poison_cuda_impl, "ar_filter", &ar_filter_cuda_impl)

}  // namespace poisonkit
