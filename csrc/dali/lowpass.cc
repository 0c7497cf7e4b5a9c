// fn.poisonkit.lowpass: the frequency low-pass (FF) of the RSK+FF defense (Kim &
// Sandoval-Segura, 2024), per channel: out = R^T (M o (R X C^T)) C with the kept basis rows
// R (along H) and C (along W) and an optional coefficient mask M. Same kernels as the torch op
// lowpass. The bases come as arguments, one set per image size, built by the same Python code
// as the torch op's (poisonkit.defenses.lowpass.lowpass_factors; the helper
// poisonkit.dali.lowpass passes them), so the basis is written once.
#include <map>
#include <utility>

#include "../kernels/lowpass.h"
#include "args.h"
#include "image_op.h"
#if defined(POISONKIT_WITH_CUDA)
#include "dali/core/dev_buffer.h"
#endif

namespace poisonkit::dali_ops {

namespace {

// Where one image size's basis lives in the flat arguments.
struct SizeBasis {
  int rank_h = 0, rank_w = 0;
  size_t rows = 0, cols = 0, mask = 0;  // offsets into rows_, cols_, mask_
};

}  // namespace

template <typename Backend>
class Lowpass : public PlanarImageOp<Lowpass<Backend>, Backend> {
  using Base = PlanarImageOp<Lowpass<Backend>, Backend>;
  friend Base;

 public:
  explicit Lowpass(const ::dali::OpSpec& spec) : Base(spec) {
    const auto sizes = spec.GetRepeatedArgument<int>("sizes");
    const auto rank_h = spec.GetRepeatedArgument<int>("rank_h");
    const auto rank_w = spec.GetRepeatedArgument<int>("rank_w");
    rows_ = spec.GetRepeatedArgument<float>("rows");
    cols_ = spec.GetRepeatedArgument<float>("cols");
    if (spec.HasArgument("mask")) mask_ = spec.GetRepeatedArgument<float>("mask");
    clamp_ = spec.GetArgument<bool>("clamp");
    DALI_ENFORCE(!sizes.empty() && sizes.size() % 2 == 0,
                 ::dali::make_string("argument `sizes`: expected [H1, W1, H2, W2, ...], got ",
                                     sizes.size(), " values"));
    const size_t n = sizes.size() / 2;
    DALI_ENFORCE(rank_h.size() == n, ::dali::make_string("argument `rank_h`: expected one rank "
                 "per size (", n, "), got ", rank_h.size()));
    DALI_ENFORCE(rank_w.size() == n, ::dali::make_string("argument `rank_w`: expected one rank "
                 "per size (", n, "), got ", rank_w.size()));
    SizeBasis at;
    for (size_t i = 0; i < n; ++i) {
      const int h = sizes[2 * i], w = sizes[2 * i + 1];
      DALI_ENFORCE(h >= 1 && w >= 1, ::dali::make_string("argument `sizes`: expected positive "
                   "sizes, got ", h, "x", w));
      DALI_ENFORCE(!bases_.count({h, w}), ::dali::make_string("argument `sizes`: ", h, "x", w,
                   " is given twice"));
      DALI_ENFORCE(rank_h[i] >= 1 && rank_h[i] <= h, ::dali::make_string("argument `rank_h`: "
                   "expected 1 to ", h, " for size ", h, "x", w, ", got ", rank_h[i]));
      DALI_ENFORCE(rank_w[i] >= 1 && rank_w[i] <= w, ::dali::make_string("argument `rank_w`: "
                   "expected 1 to ", w, " for size ", h, "x", w, ", got ", rank_w[i]));
      at.rank_h = rank_h[i];
      at.rank_w = rank_w[i];
      bases_[{h, w}] = at;
      at.rows += static_cast<size_t>(rank_h[i]) * h;
      at.cols += static_cast<size_t>(rank_w[i]) * w;
      at.mask += static_cast<size_t>(rank_h[i]) * rank_w[i];
    }
    DALI_ENFORCE(rows_.size() == at.rows, ::dali::make_string("argument `rows`: expected sum of "
                 "rank_h * H over the sizes = ", at.rows, " values, got ", rows_.size()));
    DALI_ENFORCE(cols_.size() == at.cols, ::dali::make_string("argument `cols`: expected sum of "
                 "rank_w * W over the sizes = ", at.cols, " values, got ", cols_.size()));
    DALI_ENFORCE(mask_.empty() || mask_.size() == at.mask, ::dali::make_string("argument `mask`: "
                 "expected none or sum of rank_h * rank_w over the sizes = ", at.mask,
                 " values, got ", mask_.size()));
    enforce_finite(rows_, "rows");
    enforce_finite(cols_, "cols");
    enforce_finite(mask_, "mask");
  }

 protected:
  void Prepare(const ::dali::Workspace&, const std::vector<PlanarShape>& shapes) override {
    for (size_t i = 0; i < shapes.size(); ++i) {
      const PlanarShape& s = shapes[i];
      const auto found = bases_.find({s.h, s.w});
      DALI_ENFORCE(found != bases_.end(),
                   ::dali::make_string("input 0 (images): sample ", i, " is ", s.h, "x", s.w,
                                       ", a size without a basis in argument `sizes` (list every ",
                                       "image size in poisonkit.dali.lowpass's sizes)"));
      if constexpr (std::is_same_v<Backend, ::dali::CPUBackend>) {
        if (!plans_.count(s)) {
          const SizeBasis& b = found->second;
          plans_.emplace(s, lowpass_cpu_plan(params_for(s), rows_.data() + b.rows,
                                             cols_.data() + b.cols,
                                             mask_.empty() ? nullptr : mask_.data() + b.mask));
        }
      }
    }
  }

  LowpassParams params_for(const PlanarShape& s) const {
    const SizeBasis& b = bases_.at({s.h, s.w});
    LowpassParams p;
    p.channels = s.c;
    p.height = s.h;
    p.width = s.w;
    p.rank_h = b.rank_h;
    p.rank_w = b.rank_w;
    p.masked = !mask_.empty();
    p.clamp = clamp_;
    return p;
  }

  size_t CpuScratchFloats(int, const PlanarShape& in) const override {
    return plans_.at(in).scratch_floats;
  }

  template <typename T>
  void RunCpu(int, const PlanarShape& in, const T* x, T* y, float* scratch) const {
    lowpass_image_cpu<T>(x, y, 0, plans_.at(in), scratch);
  }

#if defined(POISONKIT_WITH_CUDA)
  // The bases are copied to the device once, on the first run (on DALI's stream).
  template <typename T>
  void RunGpu(const std::vector<int>& samples, const PlanarShape& in, const T* x, T* y,
              ::dali::kernels::Scratchpad& scratch, cudaStream_t stream) const {
    const size_t n = samples.size();
    if (rows_gpu_.empty()) {
      rows_gpu_.from_host(rows_, stream);
      cols_gpu_.from_host(cols_, stream);
      if (!mask_.empty()) mask_gpu_.from_host(mask_, stream);
    }
    const LowpassParams p = params_for(in);
    const SizeBasis& b = bases_.at({in.h, in.w});
    float* work = scratch.AllocateGPU<float>(lowpass_cuda_scratch_floats(p, n));
    enforce_cuda(lowpass_cuda<T>(x, y, rows_gpu_.data() + b.rows, cols_gpu_.data() + b.cols,
                                 mask_.empty() ? nullptr : mask_gpu_.data() + b.mask,
                                 static_cast<int64_t>(n), p, work, stream),
                 "poisonkit: lowpass launch");
  }

  mutable ::dali::DeviceBuffer<float> rows_gpu_, cols_gpu_, mask_gpu_;
#endif

 private:
  std::vector<float> rows_, cols_, mask_;
  bool clamp_ = true;
  std::map<std::pair<int, int>, SizeBasis> bases_;  // by (H, W)
  std::map<PlanarShape, LowpassCpuPlan> plans_;     // CPU: by (C, H, W), built on first use
};

}  // namespace poisonkit::dali_ops

// Schema and registration live in DALI's namespace, where its macros expect them.
namespace dali {

DALI_SCHEMA(poisonkit__lowpass)
    .DocStr(R"(Frequency low-pass (the FF of RSK+FF, Kim & Sandoval-Segura, 2024), per channel:
out = R^T (M o (R X C^T)) C, with R the kept orthonormal basis rows along H, C along W and M an
optional 0/1 mask over the kept coefficients; uint8 output rounds to nearest and saturates,
float output is clamped to [0, 1] unless ``clamp`` is false. Equal to poisonkit.ops.lowpass.
The bases are arguments, one set per image size: use poisonkit.dali.lowpass, which builds
them as the torch op does (DCT or Fourier basis, square or disk mask, ``keep``).)")
    .NumInput(1)
    .InputDox(0, "images", "TensorList", "uint8 or float images, HWC (default) or CHW.")
    .InputLayout(0, {"HWC", "CHW"})
    .NumOutput(1)
    .AddArg("sizes", "The image sizes [H1, W1, H2, W2, ...] the bases are for.", ::DALI_INT_VEC)
    .AddArg("rank_h", "Kept rows along H for each size.", ::DALI_INT_VEC)
    .AddArg("rank_w", "Kept rows along W for each size.", ::DALI_INT_VEC)
    .AddArg("rows", "Each size's R [rank_h, H], row-major, concatenated in size order.",
            ::DALI_FLOAT_VEC)
    .AddArg("cols", "Each size's C [rank_w, W], row-major, concatenated in size order.",
            ::DALI_FLOAT_VEC)
    .AddOptionalArg<std::vector<float>>("mask", R"(Each size's mask [rank_h, rank_w],
concatenated in size order; none (the square masks) keeps every kept coefficient.)", nullptr)
    .AddOptionalArg("clamp", "Clamp float output to [0, 1] (uint8 output always saturates).",
                    true);

using poisonkit::dali_ops::Lowpass;
DALI_REGISTER_OPERATOR(poisonkit__lowpass, Lowpass<CPUBackend>, CPU);
#if defined(POISONKIT_WITH_CUDA)
DALI_REGISTER_OPERATOR(poisonkit__lowpass, Lowpass<GPUBackend>, GPU);
#endif

}  // namespace dali
