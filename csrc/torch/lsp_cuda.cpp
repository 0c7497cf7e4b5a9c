// poisonkit LSP ops, CUDA implementations: validate, then launch the shared CUDA driver on
// the current stream.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "checks.h"
#include "lsp_args.h"
#include "registration.h"

namespace poisonkit {

namespace {

at::Tensor lsp_generate_cuda_impl(const at::Tensor& centres_in, const at::Tensor& mixing_in,
                                  const at::Tensor& labels_in, const at::Tensor& indices_in,
                                  int64_t key, int64_t channels, int64_t height, int64_t width,
                                  int64_t patch, double eps, bool check_tables) {
  const LspParams p = lsp_generate_params(centres_in, mixing_in, labels_in, indices_in, key,
                                          channels, height, width, patch, eps, check_tables,
                                          "lsp_generate");
  const c10::cuda::CUDAGuard guard(centres_in.device());
  const at::Tensor centres = centres_in.contiguous(), mixing = mixing_in.contiguous();
  const at::Tensor labels = labels_in.contiguous(), indices = indices_in.contiguous();
  const int64_t n = indices.size(0);
  at::Tensor out = at::empty({n, channels, height, width}, centres.options());
  check_launch(lsp_generate_cuda(centres.data_ptr<float>(), mixing.data_ptr<float>(),
                                 labels.data_ptr<int64_t>(), indices.data_ptr<int64_t>(), n, p,
                                 out.data_ptr<float>(), c10::cuda::getCurrentCUDAStream()),
               "lsp_generate");
  return out;
}

at::Tensor lsp_poison_cuda_impl(const at::Tensor& x_in, const at::Tensor& centres_in,
                                const at::Tensor& mixing_in, const at::Tensor& labels_in,
                                const at::Tensor& indices_in, int64_t key, int64_t patch,
                                double eps, bool check_tables) {
  const LspParams p = lsp_poison_params(x_in, centres_in, mixing_in, labels_in, indices_in, key,
                                        patch, eps, check_tables);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const at::Tensor centres = centres_in.contiguous(), mixing = mixing_in.contiguous();
  const at::Tensor labels = labels_in.contiguous(), indices = indices_in.contiguous();
  at::Tensor out = at::empty_like(x);
  dispatch_image_dtype(x, [&]<typename T>() {
    check_launch(lsp_poison_cuda<T>(x.data_ptr<T>(), out.data_ptr<T>(), centres.data_ptr<float>(),
                                    mixing.data_ptr<float>(), labels.data_ptr<int64_t>(),
                                    indices.data_ptr<int64_t>(), x.size(0), p,
                                    c10::cuda::getCurrentCUDAStream()),
                 "lsp_poison");
  });
  return out;
}

}  // namespace

POISONKIT_IMPL_OPS(CUDA, "lsp_generate", &lsp_generate_cuda_impl, "lsp_poison",
                   &lsp_poison_cuda_impl)

}  // namespace poisonkit
