// Validates the arguments of the poisonkit LSP ops, shared by the CPU and CUDA
// implementations so both refuse bad input with the same messages.
#pragma once
#include <ATen/ATen.h>

#include "../kernels/lsp.h"

namespace poisonkit {

// Features per point at most (the CUDA kernel keeps two points of them in shared memory).
constexpr int64_t kLspMaxFeatures = 4096;

// lsp_generate: centres float32 [K, F], mixing float32 [K, F, F], both finite, on one
// device with labels and indices (int64 [N], labels in [0, K), indices >= 0); patch >= 1
// dividing height and width; F = (H / patch)(W / patch) C; eps > 0 finite. check_tables =
// false skips the finiteness scan of the tables (K F^2 values: 221 MB at 224x224, more than
// the poison's own work on a batch, and a host sync on CUDA) for tables from lsp_classes.
LspParams lsp_generate_params(const at::Tensor& centres, const at::Tensor& mixing,
                              const at::Tensor& labels, const at::Tensor& indices, int64_t key,
                              int64_t channels, int64_t height, int64_t width, int64_t patch,
                              double eps, bool check_tables, const char* op);

// lsp_poison: x uint8 or float32 [N, C, H, W] on the tables' device; the rest as above.
LspParams lsp_poison_params(const at::Tensor& x, const at::Tensor& centres,
                            const at::Tensor& mixing, const at::Tensor& labels,
                            const at::Tensor& indices, int64_t key, int64_t patch, double eps,
                            bool check_tables);

}  // namespace poisonkit
