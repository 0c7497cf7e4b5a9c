// fn.poisonkit.ar_perturb: the AR poison (Sandoval-Segura et al., NeurIPS 2022). Each image
// gets the AR perturbation of (key, its sample index, its class), added in [0,1] units and
// clamped (uint8: rounded to nearest): the same kernels as the torch op ar_poison, so the
// same key and sample index give the same poisoned image in torch and in DALI.
#include <cmath>
#include <limits>

#include "../kernels/ar.h"
#include "args.h"
#include "image_op.h"
#include "registration.h"

namespace poisonkit::dali_ops {

template <typename Backend>
class ArPerturb : public PlanarImageOp<ArPerturb<Backend>, Backend> {
 public:
  explicit ArPerturb(const ::dali::OpSpec& spec) : PlanarImageOp<ArPerturb, Backend>(spec) {
    channels_ = spec.GetArgument<int>("channels");
    DALI_ENFORCE(channels_ >= 1, ::dali::make_string("argument `channels`: expected >= 1, got ",
                                                     channels_));
    coeffs_ = spec.GetRepeatedArgument<float>("coefficients");
    const size_t per_class = static_cast<size_t>(channels_) * kArTaps;
    DALI_ENFORCE(!coeffs_.empty() && coeffs_.size() % per_class == 0,
                 ::dali::make_string("argument `coefficients`: expected num_classes * ",
                                     channels_, " * 3 * 3 values ([K, C, 3, 3] with C = ",
                                     "`channels` = ", channels_, "), got ", coeffs_.size()));
    enforce_finite(coeffs_, "coefficients");
    num_classes_ = static_cast<int>(coeffs_.size() / per_class);

    const float eps = spec.GetArgument<float>("eps");
    DALI_ENFORCE(ar_eps_error(eps).empty(), ::dali::make_string("argument `eps`: ",
                                                                ar_eps_error(eps)));
    const float p = spec.GetArgument<float>("p");
    DALI_ENFORCE(ar_p_error(p).empty(), ::dali::make_string("argument `p`: ", ar_p_error(p)));
    const int crop = spec.GetArgument<int>("crop");
    DALI_ENFORCE(crop >= 0, ::dali::make_string("argument `crop`: expected >= 0, got ", crop));
    params_.channels = channels_;
    params_.crop = crop;
    params_.eps = eps;
    params_.norm = p == 2.0f ? ArNorm::L2 : ArNorm::Linf;
    params_.key = static_cast<uint64_t>(spec.GetArgument<int64_t>("key"));
  }

 protected:
  void Prepare(const ::dali::Workspace& ws, const std::vector<PlanarShape>& shapes) override {
    const int n = static_cast<int>(shapes.size());
    read_labels_and_indices(ws, n, num_classes_, labels_, indices_);
    for (int i = 0; i < n; ++i) {
      const PlanarShape& s = shapes[i];
      DALI_ENFORCE(s.c == channels_,
                   ::dali::make_string("input 0 (images): expected ", channels_, " channels (",
                                       "argument `channels`), sample ", i, " has ", s.c));
      const std::string error =
          ar_canvas_error(s.c, int64_t{s.h} + params_.crop, int64_t{s.w} + params_.crop);
      if (!error.empty()) DALI_FAIL(::dali::make_string("input 0 (images): sample ", i, ": ", error));
    }
  }

  size_t CpuScratchFloats(int, const PlanarShape& in) const override {
    return ar_poison_cpu_scratch_floats(with_shape(params_, in));
  }

 public:  // called by PlanarImageOp
  template <typename T>
  void RunCpu(int i, const PlanarShape& in, const T* x, T* y, float* scratch) const {
    const bool finite = ar_poison_sample_cpu<T>(x, y, class_coeffs(labels_[i]),
                                                static_cast<uint64_t>(indices_[i]),
                                                with_shape(params_, in), scratch);
    EnforceFinite(finite, labels_[i]);
  }

#if defined(POISONKIT_WITH_CUDA)
  // One launch per group; the finiteness flags are read back (a stream synchronisation,
  // as in the torch CUDA op) so that an unstable class fails instead of giving NaN images.
  template <typename T>
  void RunGpu(const std::vector<int>& samples, const PlanarShape& in, const T* x, T* y,
                   ::dali::kernels::Scratchpad& scratch, cudaStream_t stream) const {
    const ArParams p = with_shape(params_, in);
    const int64_t n = static_cast<int64_t>(samples.size());
    std::vector<int64_t> labels, indices;
    for (int i : samples) {
      labels.push_back(labels_[i]);
      indices.push_back(indices_[i]);
    }
    uint8_t* finite_gpu = scratch.AllocateGPU<uint8_t>(n);
    float* work = scratch.AllocateGPU<float>(ar_poison_cuda_scratch_floats(p, n));
    // One copy through DALI's pinned staging (not three from pageable vectors).
    const auto [coeffs, labels_gpu, indices_gpu] =
        scratch.ToContiguousGPU(stream, coeffs_, labels, indices);
    enforce_cuda(ar_poison_cuda<T>(x, y, coeffs, labels_gpu, indices_gpu, n, p, finite_gpu, work,
                                   stream),
                 "poisonkit: ar_poison launch");
    std::vector<uint8_t> finite(n);
    enforce_cuda(cudaMemcpyAsync(finite.data(), finite_gpu, n, cudaMemcpyDeviceToHost, stream),
                 "poisonkit: ar_poison flags");
    enforce_cuda(cudaStreamSynchronize(stream), "poisonkit: ar_poison");
    for (int64_t j = 0; j < n; ++j) EnforceFinite(finite[j], labels[j]);
  }
#endif

 private:
  const float* class_coeffs(int64_t label) const {
    return coeffs_.data() + label * channels_ * kArTaps;
  }

  static void EnforceFinite(bool finite, int64_t label) {
    DALI_ENFORCE(finite, ::dali::make_string("argument `coefficients`: the AR process of class ",
                                             label, " overflows float32 (unstable coefficients; ",
                                             "draw them with poisonkit.poisons.ar.",
                                             "sample_coefficients)"));
  }

  std::vector<float> coeffs_;
  int channels_ = 0;
  int num_classes_ = 0;
  ArParams params_;
  std::vector<int64_t> labels_, indices_;
};

}  // namespace poisonkit::dali_ops

// Schema and registration live in DALI's namespace, where its macros expect them.
namespace dali {

POISONKIT_IMAGE_SCHEMA(poisonkit__ar_perturb, 3) POISONKIT_LABELS_INPUT POISONKIT_INDICES_INPUT
    .DocStr(R"(The AR poison (Sandoval-Segura et al., NeurIPS 2022): adds to every image the
autoregressive perturbation of its class, generated from Philox normal draws of (``key``, the
image's sample index), cropped by ``crop`` and scaled to an Lp norm of ``eps`` in [0, 1] units;
the result is clamped to [0, 1] (uint8 output rounds to nearest). Equal to the torch op
poisonkit.ops.ar_poison / ARPoison for the same coefficients, key and sample indices (the CPU
backend exactly; the GPU backend to float rounding: uint8 pixels within one level). Apply it to the stored images before any augmentation. The GPU backend reads back
one finiteness flag per group of same-sized images (a stream synchronisation).)")
    .AddArg("coefficients", R"(The classes' AR coefficients [K, C, 3, 3], flattened (class 0
first; poisonkit.poisons.ar.sample_coefficients draws them).)", ::DALI_FLOAT_VEC)
    .AddOptionalArg("channels", "C, the channels of the images and of the coefficients.", 3)
    .AddOptionalArg("eps", "Lp norm of each perturbation, in [0, 1] units.", 1.0f)
    .AddOptionalArg("p", "The norm: 2 or inf.", 2.0f)
    .AddOptionalArg("crop", "Leading rows and columns of the AR canvas dropped.", 4)
    .AddOptionalArg("key", R"(The poison's 64-bit key (the owner's secret), as a signed int64:
keys from 2^63 to 2^64 - 1 are passed as key - 2^64 (poisonkit.dali.ar_perturb does this).)",
                    int64_t{0});

DALI_REGISTER_OPERATOR(poisonkit__ar_perturb, poisonkit::dali_ops::ArPerturb<CPUBackend>, CPU);
POISONKIT_REGISTER_GPU(poisonkit__ar_perturb, poisonkit::dali_ops::ArPerturb);

}  // namespace dali
