// fn.poisonkit.sharpen: the sharpening step of the RSK+FF defense (Kim & Sandoval-Segura,
// 2024). SSK by default (centre c, neighbours -(c-1)/4); with std > 0 a random kernel per
// sample and epoch (RSK); or explicit kernels. Same filter2d kernel as the torch op.
//
// RSK kernels come from kernels/rsk.h, as the torch op rsk_kernels: a pure function of
// (seed, sample index, epoch) whatever the batch size, order, thread or framework.
#include <cmath>
#include <limits>

#include "../kernels/rsk.h"
#include "args.h"
#include "filter2d_op.h"
#include "registration.h"

namespace poisonkit::dali_ops {

namespace {

// Side of a square kernel given as a flat list, or -1 when the length is not an odd square.
int square_side(size_t n) {
  for (int k = 1; k <= kFilter2dMaxKernel; k += 2)
    if (static_cast<size_t>(k) * k == n) return k;
  return -1;
}

}  // namespace

template <typename Backend>
class Sharpen : public Filter2dOp<Backend> {
 public:
  explicit Sharpen(const ::dali::OpSpec& spec)
      : Filter2dOp<Backend>(spec), seed_(spec.GetArgument<int64_t>("seed")) {
    this->params_.padding = parse_padding(spec.GetArgument<std::string>("padding"));
    explicit_kernel_ = spec.HasArgument("kernel") || spec.HasTensorArgument("kernel");
    DALI_ENFORCE(!explicit_kernel_ || !(spec.ArgumentDefined("center") ||
                                        spec.ArgumentDefined("std")),
                 "argument `kernel`: give either `kernel` or `center`/`std`, not both");
  }

 protected:
  void PrepareKernels(const ::dali::Workspace& ws,
                      const std::vector<PlanarShape>& shapes) override {
    const int n = static_cast<int>(shapes.size());
    if (explicit_kernel_) {
      ReadKernels(ws, n);
    } else {
      DrawKernels(ws, n);
    }
    enforce_finite(this->weights_, "kernel");
    ++iteration_;
  }

 private:
  // One flat list for every sample, or an ArgumentInput of [kh, kw] floats per sample.
  void ReadKernels(const ::dali::Workspace& ws, int n) {
    auto& p = this->params_;
    if (!this->spec_.HasTensorArgument("kernel")) {
      const auto k = this->spec_.template GetRepeatedArgument<float>("kernel");
      const int side = square_side(k.size());
      DALI_ENFORCE(side > 0, ::dali::make_string("argument `kernel`: expected a square, odd "
                   "kernel of 1, 9, 25 or 49 values, got ", k.size()));
      p.kernel_h = p.kernel_w = side;
      this->weights_.clear();
      for (int i = 0; i < n; ++i) this->weights_.insert(this->weights_.end(), k.begin(), k.end());
      return;
    }
    const auto& arg = ws.ArgumentInput("kernel");
    DALI_ENFORCE(arg.num_samples() == n, ::dali::make_string("argument `kernel`: expected one "
                 "kernel per sample (", n, " samples), got ", arg.num_samples()));
    DALI_ENFORCE(arg.type() == ::DALI_FLOAT, ::dali::make_string("argument `kernel`: expected "
                 "float32 kernels, got ", arg.type()));
    DALI_ENFORCE(arg.sample_dim() == 2, ::dali::make_string("argument `kernel`: expected "
                 "[kh, kw] kernels (2 dims), got ", arg.sample_dim(), " dims"));
    const auto first = arg.tensor_shape(0);
    p.kernel_h = static_cast<int>(first[0]);
    p.kernel_w = static_cast<int>(first[1]);
    const std::string error = filter2d_kernel_size_error(p.kernel_h, p.kernel_w);
    if (!error.empty()) DALI_FAIL(::dali::make_string("argument `kernel`: ", error));
    this->weights_.resize(static_cast<size_t>(n) * p.taps());
    for (int i = 0; i < n; ++i) {
      DALI_ENFORCE(arg.tensor_shape(i) == first, ::dali::make_string("argument `kernel`: every "
                   "sample's kernel must have the same size, sample 0 is ", first, ", sample ", i,
                   " is ", arg.tensor_shape(i)));
      std::copy_n(arg.template tensor<float>(i), p.taps(), this->weights_.data() + i * p.taps());
    }
  }

  // SSK (std = 0) or RSK, drawn by kernels/rsk.h from (seed, sample index, epoch).
  void DrawKernels(const ::dali::Workspace& ws, int n) {
    const auto center = per_sample_arg<float>(this->spec_, ws, "center", n);
    const auto stddev = per_sample_arg<float>(this->spec_, ws, "std", n);
    const auto index = SampleIndices(ws, n);
    const auto epoch = Epochs(ws, n);
    auto& p = this->params_;
    p.kernel_h = p.kernel_w = 3;
    this->weights_.resize(static_cast<size_t>(n) * kRskTaps);
    for (int i = 0; i < n; ++i) {
      const std::string error = rsk_params_error(center[i], stddev[i]);
      if (!error.empty()) DALI_FAIL(::dali::make_string("argument `", error.substr(0, error.find(' ')),
                                                      "`: ", error, " (sample ", i, ")"));
      rsk_kernel(static_cast<uint64_t>(seed_), static_cast<uint64_t>(index[i]),
                 static_cast<uint64_t>(epoch[i]), center[i], stddev[i],
                 this->weights_.data() + i * kRskTaps);
    }
  }

  // `sample_index` per sample (>= 0), or the position in the batch.
  std::vector<int64_t> SampleIndices(const ::dali::Workspace& ws, int n) const {
    if (!this->spec_.ArgumentDefined("sample_index")) {
      std::vector<int64_t> position(n);
      for (int i = 0; i < n; ++i) position[i] = i;
      return position;
    }
    auto index = per_sample_arg<int64_t>(this->spec_, ws, "sample_index", n);
    enforce_range(index, 0, std::numeric_limits<int64_t>::max(), "argument `sample_index`");
    return index;
  }

  // `epoch` per sample, or the operator's iteration count.
  std::vector<int64_t> Epochs(const ::dali::Workspace& ws, int n) const {
    if (!this->spec_.ArgumentDefined("epoch")) return std::vector<int64_t>(n, iteration_);
    auto epoch = per_sample_arg<int64_t>(this->spec_, ws, "epoch", n);
    enforce_range(epoch, 0, kRskMaxEpoch, "argument `epoch`");
    return epoch;
  }

  int64_t seed_;
  int64_t iteration_ = 0;
  bool explicit_kernel_ = false;
};

}  // namespace poisonkit::dali_ops

// Schema and registration live in DALI's namespace, where its macros expect them.
namespace dali {

POISONKIT_IMAGE_SCHEMA(poisonkit__sharpen, 1)
    .DocStr(R"(Sharpening of the RSK+FF defense (Kim & Sandoval-Segura, 2024), clamped to [0, 1]
(uint8 output rounds to nearest). By default the fixed SSK kernel [[0, -n, 0], [-n, c, -n],
[0, -n, 0]] with n = (c - 1) / 4; with ``std`` > 0 a random kernel per sample and iteration
(RSK: c ~ N(center, std), n1..n4 ~ N((c - 1) / 4, std)); or explicit kernels through
``kernel``. The reference uses ``padding='valid'`` (32x32 -> 30x30).

RSK's draws are Philox normals, a pure function of (``seed``, ``sample_index``, ``epoch``):
draws 8 * epoch + 0..4 of the stream (key = seed, index = sample_index). Without
``sample_index`` a sample's index is its position in the batch; without ``epoch`` the epoch is
the operator's iteration count. poisonkit.ops.rsk_kernels(seed, sample indices, epoch, center, std)
draws the same kernels in torch.)")
    .AddOptionalArg("padding", "'valid' (reference), 'reflect', 'replicate' or 'zeros'.", "valid")
    .AddOptionalArg("center", "Centre tap c (mean of c for RSK); per sample.", 2.5f, true)
    .AddOptionalArg("std", "Standard deviation of RSK's draws; 0 gives SSK. Per sample.", 0.0f,
                    true)
    .AddOptionalArg<int64_t>("sample_index", R"(RSK: the sample's index (>= 0), which picks its
draws; per sample. Default: the position in the batch.)", nullptr, true)
    .AddOptionalArg<int64_t>("epoch", R"(RSK: the epoch (0 to 2^31 - 1), which picks the draws
of the sample index; per sample. Default: the operator's iteration count.)", nullptr, true)
    .AddOptionalArg<std::vector<float>>("kernel", R"(Explicit kernel instead of center/std: a
flat list of 1, 9, 25 or 49 floats (square), or per sample a float32 [kh, kw] tensor (odd sizes
up to 7, the same for the whole batch).)", nullptr, true)
    .AddRandomSeedArg();

DALI_REGISTER_OPERATOR(poisonkit__sharpen, poisonkit::dali_ops::Sharpen<CPUBackend>, CPU);
POISONKIT_REGISTER_GPU(poisonkit__sharpen, poisonkit::dali_ops::Sharpen);

}  // namespace dali
