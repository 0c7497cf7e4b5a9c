// fn.poisonkit.classwise_blur: the CUDA poison (Sadasivan et al., CVPR 2023). Each image is
// blurred with its class's kernel (depthwise, zero padding), divided by its own global max
// and stored with truncation, as the reference does; same kernel as the torch op.
#include <cmath>

#include "args.h"
#include "filter2d_op.h"
#include "registration.h"

namespace poisonkit::dali_ops {

template <typename Backend>
class ClasswiseBlur : public Filter2dOp<Backend> {
 public:
  explicit ClasswiseBlur(const ::dali::OpSpec& spec) : Filter2dOp<Backend>(spec) {
    const int k = spec.GetArgument<int>("kernel_size");
    const std::string error = filter2d_kernel_size_error(k, k);
    if (!error.empty()) DALI_FAIL(::dali::make_string("argument `kernel_size`: ", error));
    kernels_ = spec.GetRepeatedArgument<float>("kernels");
    const size_t taps = static_cast<size_t>(k) * k;
    DALI_ENFORCE(!kernels_.empty() && kernels_.size() % taps == 0,
                 ::dali::make_string("argument `kernels`: expected num_classes * ", k, " * ", k,
                                     " values (kernel_size ", k, "), got ", kernels_.size()));
    enforce_finite(kernels_, "kernels");
    num_classes_ = static_cast<int>(kernels_.size() / taps);
    this->params_.kernel_h = this->params_.kernel_w = k;
    this->params_.padding = Padding::Zeros;
    this->params_.normalize_max = true;
    this->params_.rounding = Rounding::Truncate;
  }

 protected:
  void PrepareKernels(const ::dali::Workspace& ws,
                      const std::vector<PlanarShape>& shapes) override {
    const int n = static_cast<int>(shapes.size());
    const auto labels = per_sample_integers(ws.Input<::dali::CPUBackend>(1), n, "input 1 (labels)");
    enforce_range(labels, 0, num_classes_, "input 1 (labels)");
    const int taps = this->params_.taps();
    this->weights_.resize(static_cast<size_t>(n) * taps);
    for (int i = 0; i < n; ++i) {
      std::copy_n(kernels_.data() + labels[i] * taps, taps, this->weights_.data() + i * taps);
    }
  }

 private:
  std::vector<float> kernels_;
  int num_classes_ = 0;
};

}  // namespace poisonkit::dali_ops

// Schema and registration live in DALI's namespace, where its macros expect them.
namespace dali {

POISONKIT_IMAGE_SCHEMA(poisonkit__classwise_blur, 2) POISONKIT_LABELS_INPUT
    .DocStr(R"(The CUDA poison (Sadasivan et al., CVPR 2023): blurs every image with the kernel
of its class (depthwise, zero padding), divides it by its own global maximum and stores uint8
output with truncation, as the reference code does. Float input in [0, 1] gives the normalised
value, clamped to [0, 1]. Apply it to the stored images before any augmentation.)")
    .AddArg("kernels", R"(The class kernels, flattened: num_classes * kernel_size * kernel_size
floats, class 0 first (poisonkit.poisons.classwise_blur.class_kernels gives the reference's).)",
            ::DALI_FLOAT_VEC)
    .AddOptionalArg("kernel_size", "Side of each (square, odd) class kernel.", 3);

DALI_REGISTER_OPERATOR(poisonkit__classwise_blur, poisonkit::dali_ops::ClasswiseBlur<CPUBackend>,
                       CPU);
POISONKIT_REGISTER_GPU(poisonkit__classwise_blur, poisonkit::dali_ops::ClasswiseBlur);

}  // namespace dali
