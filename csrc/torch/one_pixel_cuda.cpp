// poisonkit one-pixel shortcut ops, CUDA implementations (the search's scoring and
// selection are small and run on the CPU op with the moments copied over).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <tuple>

#include "checks.h"
#include "one_pixel_args.h"
#include "registration.h"

namespace poisonkit {

namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> one_pixel_moments_cuda_impl(
    const at::Tensor& x_in, const at::Tensor& labels_in, int64_t num_classes) {
  check_one_pixel_moments_args(x_in, labels_in, num_classes);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), labels = labels_in.contiguous();
  auto [sums, squares, counts] = one_pixel_moment_outputs(x, labels, num_classes);
  const int C = static_cast<int>(x.size(1));
  const int64_t plane = x.size(2) * x.size(3);
  dispatch_image_dtype(x, [&]<typename T>() {
    check_launch(one_pixel_moments_cuda<T>(x.data_ptr<T>(), labels.data_ptr<int64_t>(), x.size(0),
                                           C, plane, sums.data_ptr<double>(),
                                           squares.data_ptr<double>(),
                                           c10::cuda::getCurrentCUDAStream()),
                 "one_pixel_moments");
  });
  return {sums, squares, counts};
}

at::Tensor one_pixel_apply_cuda_impl(const at::Tensor& x_in, const at::Tensor& labels_in,
                                     const at::Tensor& positions_in,
                                     const at::Tensor& colours_in) {
  check_one_pixel_apply_args(x_in, labels_in, positions_in, colours_in);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), labels = labels_in.contiguous();
  const at::Tensor positions = positions_in.contiguous(), colours = colours_in.contiguous();
  at::Tensor out = at::empty_like(x);
  const int C = static_cast<int>(x.size(1));
  const int64_t plane = x.size(2) * x.size(3);
  dispatch_image_dtype(x, [&]<typename T>() {
    check_launch(one_pixel_apply_cuda<T>(x.data_ptr<T>(), out.data_ptr<T>(),
                                         labels.data_ptr<int64_t>(), positions.data_ptr<int64_t>(),
                                         colours.data_ptr<float>(), x.size(0), C, plane,
                                         c10::cuda::getCurrentCUDAStream()),
                 "one_pixel_apply");
  });
  return out;
}

}  // namespace

POISONKIT_IMPL_OPS(CUDA, "one_pixel_moments", &one_pixel_moments_cuda_impl, "one_pixel_apply",
                   &one_pixel_apply_cuda_impl)

}  // namespace poisonkit
