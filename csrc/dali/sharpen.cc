// fn.poisonkit.sharpen: the sharpening step of the RSK+FF defense (Kim & Sandoval-Segura,
// 2024). SSK by default (centre c, neighbours -(c-1)/4); with std > 0 a random kernel per
// sample and epoch (RSK); or explicit kernels. Same filter2d kernel as the torch op.
//
// RSK draws come from the shared Philox generator (kernels/philox.h), as every random draw
// in poisonkit: a sample's five normals are draws 8 * epoch + 0..4 of the Philox stream
// (key = seed, index = the sample's index, stream kSharpenStream), so a kernel is a pure
// function of (seed, sample index, epoch) whatever the batch size, order or thread.
#include <cmath>
#include <limits>

#include "../kernels/philox.h"
#include "args.h"
#include "filter2d_op.h"

namespace poisonkit::dali_ops {

namespace {

constexpr uint32_t kSharpenStream = 0x534B0001u;  // 'SK', RSK draws
constexpr int kDrawsPerEpoch = 8;                  // 5 used: c, n1..n4
// Philox block counters (a block per 4 draws) are 32 bits: epochs below 2^31.
constexpr int64_t kMaxEpoch = (int64_t{1} << 32) * 4 / kDrawsPerEpoch;  // 2^31

// Side of a square kernel given as a flat list, or -1 when the length is not an odd square.
int square_side(size_t n) {
  for (int k = 1; k <= kFilter2dMaxKernel; k += 2)
    if (static_cast<size_t>(k) * k == n) return k;
  return -1;
}

// K = [[0, -n1, 0], [-n2, c, -n3], [0, -n4, 0]].
void sharpen_kernel(double c, const double n[4], float* k) {
  const float taps[9] = {0.0f, static_cast<float>(-n[0]), 0.0f,
                         static_cast<float>(-n[1]), static_cast<float>(c),
                         static_cast<float>(-n[2]), 0.0f, static_cast<float>(-n[3]), 0.0f};
  std::copy_n(taps, 9, k);
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
    DALI_ENFORCE(p.kernel_h % 2 == 1 && p.kernel_w % 2 == 1 && p.kernel_h <= kFilter2dMaxKernel &&
                 p.kernel_w <= kFilter2dMaxKernel,
                 ::dali::make_string("argument `kernel`: expected odd sizes up to ",
                                     kFilter2dMaxKernel, ", got ", first));
    this->weights_.resize(static_cast<size_t>(n) * p.taps());
    for (int i = 0; i < n; ++i) {
      DALI_ENFORCE(arg.tensor_shape(i) == first, ::dali::make_string("argument `kernel`: every "
                   "sample's kernel must have the same size, sample 0 is ", first, ", sample ", i,
                   " is ", arg.tensor_shape(i)));
      std::copy_n(arg.template tensor<float>(i), p.taps(), this->weights_.data() + i * p.taps());
    }
  }

  // SSK (std = 0) or RSK: c ~ N(center, std), n1..n4 ~ N((c - 1) / 4, std), from Philox
  // draws of (seed, sample index, epoch); see the top of this file.
  void DrawKernels(const ::dali::Workspace& ws, int n) {
    const auto center = per_sample_arg<float>(this->spec_, ws, "center", n);
    const auto stddev = per_sample_arg<float>(this->spec_, ws, "std", n);
    enforce_finite(center, "center");
    enforce_finite(stddev, "std");
    const auto index = SampleIndices(ws, n);
    const auto epoch = Epochs(ws, n);
    auto& p = this->params_;
    p.kernel_h = p.kernel_w = 3;
    this->weights_.resize(static_cast<size_t>(n) * 9);
    for (int i = 0; i < n; ++i) {
      DALI_ENFORCE(stddev[i] >= 0.0f, ::dali::make_string("argument `std`: expected a "
                   "non-negative value, got ", stddev[i], " for sample ", i));
      float z[5] = {};
      if (stddev[i] > 0.0f) {
        const PhiloxStream s = philox_stream(static_cast<uint64_t>(seed_),
                                             static_cast<uint64_t>(index[i]), kSharpenStream);
        normal_run(s, static_cast<uint64_t>(epoch[i]) * kDrawsPerEpoch, 5, z);
      }
      const double c = center[i] + static_cast<double>(stddev[i]) * z[0];
      double nb[4];
      for (int j = 0; j < 4; ++j) nb[j] = (c - 1.0) / 4.0 + static_cast<double>(stddev[i]) * z[j + 1];
      sharpen_kernel(c, nb, this->weights_.data() + i * 9);
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
    enforce_range(epoch, 0, kMaxEpoch, "argument `epoch`");
    return epoch;
  }

  int64_t seed_;
  int64_t iteration_ = 0;
  bool explicit_kernel_ = false;
};

}  // namespace poisonkit::dali_ops

// Schema and registration live in DALI's namespace, where its macros expect them.
namespace dali {

DALI_SCHEMA(poisonkit__sharpen)
    .DocStr(R"(Sharpening of the RSK+FF defense (Kim & Sandoval-Segura, 2024), clamped to [0, 1]
(uint8 output rounds to nearest). By default the fixed SSK kernel [[0, -n, 0], [-n, c, -n],
[0, -n, 0]] with n = (c - 1) / 4; with ``std`` > 0 a random kernel per sample and iteration
(RSK: c ~ N(center, std), n1..n4 ~ N((c - 1) / 4, std)); or explicit kernels through
``kernel``. The reference uses ``padding='valid'`` (32x32 -> 30x30).

RSK's draws are Philox normals, a pure function of (``seed``, ``sample_index``, ``epoch``):
draws 8 * epoch + 0..4 of the stream (key = seed, index = sample_index). Without
``sample_index`` a sample's index is its position in the batch; without ``epoch`` the epoch is
the operator's iteration count. They are not torch.Generator's draws, so RandomSharpen with the
same seed gives other (equally distributed) kernels.)")
    .NumInput(1)
    .InputDox(0, "images", "TensorList", "uint8 or float images, HWC (default) or CHW.")
    .InputLayout(0, {"HWC", "CHW"})
    .NumOutput(1)
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

using poisonkit::dali_ops::Sharpen;
DALI_REGISTER_OPERATOR(poisonkit__sharpen, Sharpen<CPUBackend>, CPU);
#if defined(POISONKIT_WITH_CUDA)
DALI_REGISTER_OPERATOR(poisonkit__sharpen, Sharpen<GPUBackend>, GPU);
#endif


}  // namespace dali
