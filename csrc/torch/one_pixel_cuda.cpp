// poisonkit one-pixel shortcut ops, CUDA implementations (the search's scoring and
// selection are small and run on the CPU op with the moments copied over).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>

#include "one_pixel_args.h"

namespace poisonkit {

namespace {

void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": CUDA launch failed: ", cudaGetErrorString(err));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> one_pixel_moments_cuda_impl(
    const at::Tensor& x_in, const at::Tensor& labels_in, int64_t num_classes) {
  check_one_pixel_moments_args(x_in, labels_in, num_classes);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous(), labels = labels_in.contiguous();
  auto [sums, squares, counts] = one_pixel_moment_outputs(x, labels, num_classes);
  const int C = static_cast<int>(x.size(1));
  const int64_t plane = x.size(2) * x.size(3);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  cudaError_t err;
  if (x.scalar_type() == at::kByte) {
    err = one_pixel_moments_cuda<uint8_t>(x.data_ptr<uint8_t>(), labels.data_ptr<int64_t>(),
                                          x.size(0), C, plane, sums.data_ptr<double>(),
                                          squares.data_ptr<double>(), stream);
  } else {
    err = one_pixel_moments_cuda<float>(x.data_ptr<float>(), labels.data_ptr<int64_t>(),
                                        x.size(0), C, plane, sums.data_ptr<double>(),
                                        squares.data_ptr<double>(), stream);
  }
  check_launch(err, "one_pixel_moments");
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
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  cudaError_t err;
  if (x.scalar_type() == at::kByte) {
    err = one_pixel_apply_cuda<uint8_t>(x.data_ptr<uint8_t>(), out.data_ptr<uint8_t>(),
                                        labels.data_ptr<int64_t>(), positions.data_ptr<int64_t>(),
                                        colours.data_ptr<float>(), x.size(0), C, plane, stream);
  } else {
    err = one_pixel_apply_cuda<float>(x.data_ptr<float>(), out.data_ptr<float>(),
                                      labels.data_ptr<int64_t>(), positions.data_ptr<int64_t>(),
                                      colours.data_ptr<float>(), x.size(0), C, plane, stream);
  }
  check_launch(err, "one_pixel_apply");
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(poisonkit, CUDA, m) {
  m.impl("one_pixel_moments", &one_pixel_moments_cuda_impl);
  m.impl("one_pixel_apply", &one_pixel_apply_cuda_impl);
}

}  // namespace poisonkit
