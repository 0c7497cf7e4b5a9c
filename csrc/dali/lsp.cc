// fn.poisonkit.lsp_perturb: the LSP poison (Yu et al., KDD 2022). Each image gets the LSP
// perturbation of (key, its sample index, its class), added in [0,1] units and clipped
// (uint8 truncated): the same kernels and class tables as the torch op lsp_poison, so the
// same key and sample index give the same poisoned image in torch and in DALI.
#include <cmath>
#include <limits>
#include <map>

#include "../kernels/lsp.h"
#include "args.h"
#include "image_op.h"
#include "registration.h"

namespace poisonkit::dali_ops {

namespace {

constexpr int kMaxFeatures = 4096;  // as the torch op (the CUDA kernel's shared memory)

struct LspTables {
  std::vector<float> centres, mixing;
};

}  // namespace

template <typename Backend>
class LspPerturb : public PlanarImageOp<LspPerturb<Backend>, Backend> {
 public:
  explicit LspPerturb(const ::dali::OpSpec& spec) : PlanarImageOp<LspPerturb, Backend>(spec) {
    num_classes_ = spec.GetArgument<int>("num_classes");
    DALI_ENFORCE(num_classes_ >= 1, ::dali::make_string("argument `num_classes`: expected >= 1, "
                                                        "got ", num_classes_));
    params_.patch = spec.GetArgument<int>("patch");
    DALI_ENFORCE(params_.patch >= 1, ::dali::make_string("argument `patch`: expected >= 1, got ",
                                                         params_.patch));
    params_.eps = spec.GetArgument<float>("eps");
    DALI_ENFORCE(std::isfinite(params_.eps) && params_.eps > 0.0f,
                 ::dali::make_string("argument `eps`: expected a positive finite number, got ",
                                     params_.eps));
    class_sep_ = spec.GetArgument<float>("class_sep");
    DALI_ENFORCE(std::isfinite(class_sep_) && class_sep_ > 0.0f,
                 ::dali::make_string("argument `class_sep`: expected a positive finite number, "
                                     "got ", class_sep_));
    params_.key = static_cast<uint64_t>(spec.GetArgument<int64_t>("key"));
  }

 protected:
  void Prepare(const ::dali::Workspace& ws, const std::vector<PlanarShape>& shapes) override {
    const int n = static_cast<int>(shapes.size());
    read_labels_and_indices(ws, n, num_classes_, labels_, indices_);
    for (int i = 0; i < n; ++i) {
      const PlanarShape& s = shapes[i];
      DALI_ENFORCE(s.h % params_.patch == 0 && s.w % params_.patch == 0,
                   ::dali::make_string("argument `patch`: ", params_.patch, " does not divide ",
                                       "sample ", i, "'s size ", s.h, "x", s.w));
      const int64_t features = int64_t{s.h / params_.patch} * (s.w / params_.patch) * s.c;
      DALI_ENFORCE(features <= kMaxFeatures,
                   ::dali::make_string("input 0 (images): sample ", i, " needs ", features,
                                       " LSP features, at most ", kMaxFeatures,
                                       " (raise `patch`)"));
      tables_for(with_shape(params_, s).features());  // drawn here, before the parallel run
    }
  }

  size_t CpuScratchFloats(int, const PlanarShape& in) const override {
    return lsp_cpu_scratch_floats(with_shape(params_, in));
  }

 public:  // called by PlanarImageOp
  template <typename T>
  void RunCpu(int i, const PlanarShape& in, const T* x, T* y, float* scratch) const {
    const LspParams p = with_shape(params_, in);
    const int64_t F = p.features();
    const LspTables& t = tables_.at(F);
    lsp_poison_sample_cpu<T>(x, y, t.centres.data() + labels_[i] * F,
                             t.mixing.data() + labels_[i] * F * F,
                             static_cast<uint64_t>(indices_[i]), p, scratch);
  }

#if defined(POISONKIT_WITH_CUDA)
  template <typename T>
  void RunGpu(const std::vector<int>& samples, const PlanarShape& in, const T* x, T* y,
              ::dali::kernels::Scratchpad& scratch, cudaStream_t stream) const {
    const LspParams p = with_shape(params_, in);
    const LspTables& t = tables_.at(p.features());
    std::vector<int64_t> labels, indices;
    for (int i : samples) {
      labels.push_back(labels_[i]);
      indices.push_back(indices_[i]);
    }
    // One copy through DALI's pinned staging (not four from pageable vectors).
    const auto [centres, mixing, labels_gpu, indices_gpu] =
        scratch.ToContiguousGPU(stream, t.centres, t.mixing, labels, indices);
    enforce_cuda(lsp_poison_cuda<T>(x, y, centres, mixing, labels_gpu, indices_gpu,
                                    static_cast<int64_t>(samples.size()), p, stream),
                 "poisonkit: lsp_poison launch");
  }
#endif

 private:
  // The class tables for F features, drawn once from the key (the torch op's lsp_classes).
  void tables_for(int features) {
    if (tables_.count(features)) return;
    LspTables& t = tables_[features];
    t.centres.resize(static_cast<size_t>(num_classes_) * features);
    t.mixing.resize(static_cast<size_t>(num_classes_) * features * features);
    lsp_class_tables_cpu(params_.key, num_classes_, features, class_sep_, t.centres.data(),
                         t.mixing.data());
  }

  int num_classes_ = 0;
  float class_sep_ = 10.0f;
  LspParams params_;
  std::map<int64_t, LspTables> tables_;
  std::vector<int64_t> labels_, indices_;
};

}  // namespace poisonkit::dali_ops

namespace dali {

POISONKIT_IMAGE_SCHEMA(poisonkit__lsp_perturb, 3) POISONKIT_LABELS_INPUT POISONKIT_INDICES_INPUT
    .DocStr(R"(The LSP poison (Yu et al., KDD 2022): adds to every image a class-clustered
point of (H/patch)(W/patch)C features (make_classification's distribution, drawn from ``key``,
the image's class and its sample index), each value repeated over a patch x patch block and
scaled to an L2 norm of eps * sqrt(C H W) in [0, 1] units; the result is clipped to [0, 1]
(uint8 output truncates, as the reference stores it). Equal to the torch op
poisonkit.ops.lsp_poison / LSPPoison for the same key, classes and sample indices. Apply it to
the stored images before any augmentation.)")
    .AddOptionalArg("num_classes", "K, the number of classes.", 10)
    .AddOptionalArg("patch", "Side of the blocks a feature is repeated over; divides H and W.", 8)
    .AddOptionalArg("eps", "The L2 norm is eps * sqrt(C H W) (the reference's 6/255).",
                    6.0f / 255.0f)
    .AddOptionalArg("class_sep", "Half the side of the hypercube the class centres sit on.",
                    10.0f)
    .AddOptionalArg("key", R"(The poison's 64-bit key (the owner's secret), as a signed int64:
keys from 2^63 to 2^64 - 1 are passed as key - 2^64 (poisonkit.dali.lsp_perturb does this).)",
                    int64_t{0});

DALI_REGISTER_OPERATOR(poisonkit__lsp_perturb, poisonkit::dali_ops::LspPerturb<CPUBackend>, CPU);
POISONKIT_REGISTER_GPU(poisonkit__lsp_perturb, poisonkit::dali_ops::LspPerturb);

}  // namespace dali
