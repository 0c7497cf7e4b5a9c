// poisonkit LSP ops: schemas, argument validation and the CPU implementations.
//   lsp_classes: class centres [K, F] and mixing matrices [K, F, F] drawn from the key
//   lsp_generate: the perturbations, float32 [N, C, H, W]
//   lsp_poison: images plus their perturbations, clipped (uint8 truncated)
#include "parallel.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>
#include <vector>

#include "lsp_args.h"
#include "checks.h"
#include "registration.h"

namespace poisonkit {

namespace {

void check_features(int64_t features, const char* op) {
  TORCH_CHECK(features >= 1 && features <= kLspMaxFeatures, op, ": features must be in [1, ",
              kLspMaxFeatures, "], got ", features);
}

}  // namespace

LspParams lsp_generate_params(const at::Tensor& centres, const at::Tensor& mixing,
                              const at::Tensor& labels, const at::Tensor& indices, int64_t key,
                              int64_t channels, int64_t height, int64_t width, int64_t patch,
                              double eps, bool check_tables, const char* op) {
  TORCH_CHECK(centres.scalar_type() == at::kFloat && mixing.scalar_type() == at::kFloat, op,
              ": centres and mixing must be float32, got ", centres.scalar_type(), " and ",
              mixing.scalar_type());
  TORCH_CHECK(centres.dim() == 2 && centres.size(0) >= 1, op,
              ": centres must be [K, F] with K >= 1, got shape ", centres.sizes());
  const int64_t K = centres.size(0), F = centres.size(1);
  check_features(F, op);
  TORCH_CHECK(mixing.dim() == 3 && mixing.size(0) == K && mixing.size(1) == F &&
                  mixing.size(2) == F,
              op, ": mixing must be [K, F, F] = [", K, ", ", F, ", ", F, "], got shape ",
              mixing.sizes());
  TORCH_CHECK(mixing.device() == centres.device(), op, ": mixing must be on centres' device (",
              centres.device(), "), got ", mixing.device());
  const int64_t n = check_sample_indices(indices, centres.device(), op);
  check_labels(labels, n, K, centres.device(), op);
  TORCH_CHECK(!check_tables || (float_all_finite(centres) && float_all_finite(mixing)), op,
              ": centres and mixing must be finite");
  TORCH_CHECK(std::isfinite(eps) && eps > 0.0, op, ": eps must be a positive finite number, got ",
              eps);
  TORCH_CHECK(channels >= 1 && height >= 1 && width >= 1, op,
              ": channels, height and width must be >= 1, got ", channels, ", ", height, ", ",
              width);
  TORCH_CHECK(patch >= 1 && height % patch == 0 && width % patch == 0, op,
              ": patch must be >= 1 and divide the image size ", height, "x", width, ", got ",
              patch);
  const int64_t expected = (height / patch) * (width / patch) * channels;
  TORCH_CHECK(F == expected, op, ": centres have ", F, " features but a ", channels, "x", height,
              "x", width, " image with patch ", patch, " needs (H/patch)(W/patch)C = ", expected);
  LspParams p;
  p.channels = static_cast<int>(channels);
  p.height = static_cast<int>(height);
  p.width = static_cast<int>(width);
  p.patch = static_cast<int>(patch);
  p.eps = static_cast<float>(eps);
  p.key = static_cast<uint64_t>(key);
  return p;
}

LspParams lsp_poison_params(const at::Tensor& x, const at::Tensor& centres,
                            const at::Tensor& mixing, const at::Tensor& labels,
                            const at::Tensor& indices, int64_t key, int64_t patch, double eps,
                            bool check_tables) {
  check_image_batch(x, "lsp_poison");
  TORCH_CHECK(x.device() == centres.device(), "lsp_poison: x must be on centres' device (",
              centres.device(), "), got ", x.device());
  TORCH_CHECK(indices.dim() != 1 || x.size(0) == indices.size(0), "lsp_poison: x holds ",
              x.size(0), " images but indices holds ", indices.size(0));
  return lsp_generate_params(centres, mixing, labels, indices, key, x.size(1), x.size(2),
                             x.size(3), patch, eps, check_tables, "lsp_poison");
}

namespace {

std::tuple<at::Tensor, at::Tensor> lsp_classes_cpu(int64_t key, int64_t num_classes,
                                                   int64_t features, double class_sep) {
  TORCH_CHECK(num_classes >= 1, "lsp_classes: num_classes must be >= 1, got ", num_classes);
  check_features(features, "lsp_classes");
  TORCH_CHECK(std::isfinite(class_sep) && class_sep > 0.0,
              "lsp_classes: class_sep must be a positive finite number, got ", class_sep);
  at::Tensor centres = at::empty({num_classes, features}, at::kFloat);
  at::Tensor mixing = at::empty({num_classes, features, features}, at::kFloat);
  lsp_class_tables_cpu(static_cast<uint64_t>(key), static_cast<int>(num_classes),
                       static_cast<int>(features), static_cast<float>(class_sep),
                       centres.data_ptr<float>(), mixing.data_ptr<float>());
  return {centres, mixing};
}

// Runs body(k, group_indices, rows, G, scratch) under parallel.h's policy for groups of at
// most kLspCpuGroup batch positions `rows` of one class k (so the CPU driver reads a class's
// mixing matrix once per group), with their sample indices and per-thread scratch. Grouping
// changes no value: each sample's sums are its own.
template <typename Body>
void for_each_class_group(const int64_t* labels, const int64_t* indices, int64_t n,
                          const LspParams& p, const Body& body) {
  std::vector<int64_t> order(n), starts;
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return labels[a] < labels[b]; });
  for (int64_t i = 0; i < n; ++i)
    if (i == 0 || labels[order[i]] != labels[order[i - 1]] || i - starts.back() == kLspCpuGroup)
      starts.push_back(i);
  starts.push_back(n);
  // Work per group: each sample's F x F product plus its image's reads and writes.
  const int64_t work =
      kLspCpuGroup * (int64_t{p.features()} * p.features() + 2 * p.channels * p.plane());
  parallel_items(static_cast<int64_t>(starts.size()) - 1, work,
                 lsp_cpu_scratch_floats(p, kLspCpuGroup),
                 [&](int64_t begin, int64_t end, float* scratch) {
                   uint64_t group_indices[kLspCpuGroup];
                   for (int64_t g = begin; g < end; ++g) {
                     const int64_t* rows = order.data() + starts[g];
                     const int G = static_cast<int>(starts[g + 1] - starts[g]);
                     for (int i = 0; i < G; ++i)
                       group_indices[i] = static_cast<uint64_t>(indices[rows[i]]);
                     body(labels[rows[0]], group_indices, rows, G, scratch);
                   }
                 });
}

at::Tensor lsp_generate_cpu(const at::Tensor& centres_in, const at::Tensor& mixing_in,
                            const at::Tensor& labels_in, const at::Tensor& indices_in,
                            int64_t key, int64_t channels, int64_t height, int64_t width,
                            int64_t patch, double eps, bool check_tables) {
  const LspParams p = lsp_generate_params(centres_in, mixing_in, labels_in, indices_in, key,
                                          channels, height, width, patch, eps, check_tables,
                                          "lsp_generate");
  const at::Tensor centres = centres_in.contiguous(), mixing = mixing_in.contiguous();
  const at::Tensor labels = labels_in.contiguous(), indices = indices_in.contiguous();
  const int64_t n = indices.size(0), F = p.features(), size = channels * p.plane();
  at::Tensor out = at::empty({n, channels, height, width}, centres.options());
  const float* c = centres.data_ptr<float>();
  const float* a = mixing.data_ptr<float>();
  const int64_t* lab = labels.data_ptr<int64_t>();
  const int64_t* idx = indices.data_ptr<int64_t>();
  float* dst = out.data_ptr<float>();
  for_each_class_group(lab, idx, n, p, [&](int64_t k, const uint64_t* group_indices,
                                            const int64_t* rows, int G, float* scratch) {
    float* outs[kLspCpuGroup];
    for (int g = 0; g < G; ++g) outs[g] = dst + rows[g] * size;
    lsp_generate_samples_cpu(c + k * F, a + k * F * F, group_indices, G, p, outs, scratch);
  });
  return out;
}

template <typename T>
void lsp_poison_batch_cpu(const at::Tensor& x, const at::Tensor& centres,
                          const at::Tensor& mixing, const at::Tensor& labels,
                          const at::Tensor& indices, const LspParams& p, at::Tensor& out) {
  const int64_t F = p.features(), size = p.channels * p.plane();
  const T* src = x.data_ptr<T>();
  T* dst = out.data_ptr<T>();
  const float* c = centres.data_ptr<float>();
  const float* a = mixing.data_ptr<float>();
  const int64_t* lab = labels.data_ptr<int64_t>();
  const int64_t* idx = indices.data_ptr<int64_t>();
  for_each_class_group(lab, idx, x.size(0), p, [&](int64_t k, const uint64_t* group_indices,
                                                   const int64_t* rows, int G, float* scratch) {
    const T* images[kLspCpuGroup];
    T* outs[kLspCpuGroup];
    for (int g = 0; g < G; ++g) {
      images[g] = src + rows[g] * size;
      outs[g] = dst + rows[g] * size;
    }
    lsp_poison_samples_cpu<T>(images, outs, c + k * F, a + k * F * F, group_indices, G, p,
                              scratch);
  });
}

at::Tensor lsp_poison_cpu(const at::Tensor& x_in, const at::Tensor& centres_in,
                          const at::Tensor& mixing_in, const at::Tensor& labels_in,
                          const at::Tensor& indices_in, int64_t key, int64_t patch, double eps,
                          bool check_tables) {
  const LspParams p = lsp_poison_params(x_in, centres_in, mixing_in, labels_in, indices_in, key,
                                        patch, eps, check_tables);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor centres = centres_in.contiguous(), mixing = mixing_in.contiguous();
  const at::Tensor labels = labels_in.contiguous(), indices = indices_in.contiguous();
  at::Tensor out = at::empty_like(x);
  dispatch_image_dtype(x, [&]<typename T>() {
    lsp_poison_batch_cpu<T>(x, centres, mixing, labels, indices, p, out);
  });
  return out;
}

}  // namespace

POISONKIT_DEFINE_OPS(
    "lsp_classes(int key, int num_classes, int features, float class_sep) -> (Tensor, Tensor)",
    "lsp_generate(Tensor centres, Tensor mixing, Tensor labels, Tensor indices, int key, "
    "int channels, int height, int width, int patch, float eps, bool check_tables=True) -> Tensor",
    "lsp_poison(Tensor x, Tensor centres, Tensor mixing, Tensor labels, Tensor indices, int key, "
    "int patch, float eps, bool check_tables=True) -> Tensor")

// lsp_classes has no tensor input: one implementation for every backend (the tables are
// small and are moved to the images' device by the caller).
POISONKIT_IMPL_OPS(CompositeExplicitAutograd, "lsp_classes", &lsp_classes_cpu)
POISONKIT_IMPL_OPS(CPU, "lsp_generate", &lsp_generate_cpu, "lsp_poison", &lsp_poison_cpu)

}  // namespace poisonkit
