// fn.poisonkit.lowpass: the frequency low-pass (FF) of the RSK+FF defense (Kim &
// Sandoval-Segura, 2024), per channel: out = R^T (M o (R X C^T)) C with the kept basis rows
// R (along H) and C (along W) and an optional coefficient mask M. Same kernels as the torch op
// lowpass. The factors are built inside the operator from (keep, basis, shape), once per
// image size it meets (csrc/kernels/lowpass_basis.h, the formulas of the torch op's
// poisonkit/_lowpass_bases.py), so a batch may mix sizes and no size is listed up front.
#include <map>
#include <string>
#include <utility>

#include "../kernels/lowpass.h"
#include "../kernels/lowpass_basis.h"
#include "image_op.h"

namespace poisonkit::dali_ops {

template <typename Backend>
class Lowpass : public PlanarImageOp<Lowpass<Backend>, Backend> {
  using Base = PlanarImageOp<Lowpass<Backend>, Backend>;
  friend Base;

 public:
  explicit Lowpass(const ::dali::OpSpec& spec) : Base(spec) {
    keep_ = spec.GetArgument<float>("keep");
    // (not DALI_ENFORCE: its message argument cannot name a variable `error`, which the
    // macro declares itself)
    const std::string why = lowpass_options_error(keep_, spec.GetArgument<std::string>("basis"),
                                                  spec.GetArgument<std::string>("shape"), &basis_,
                                                  &shape_);
    if (!why.empty()) DALI_FAIL("argument `", why.substr(0, why.find(':')), "`: ", why);
    clamp_ = spec.GetArgument<bool>("clamp");
  }

 protected:
  // Builds the factors (and, on the CPU, the plan) of every size not seen before.
  void Prepare(const ::dali::Workspace&, const std::vector<PlanarShape>& shapes) override {
    for (size_t i = 0; i < shapes.size(); ++i) {
      const PlanarShape& s = shapes[i];
      if (!factors_.count({s.h, s.w})) {
        const std::string why = lowpass_size_error(s.h, s.w, keep_, basis_);
        if (!why.empty())
          DALI_FAIL("input 0 (images): sample ", i, " is ", s.h, "x", s.w, ": ", why);
        factors_.emplace(std::make_pair(s.h, s.w),
                         lowpass_factors(s.h, s.w, keep_, basis_, shape_));
      }
      if constexpr (std::is_same_v<Backend, ::dali::CPUBackend>) {
        if (!plans_.count(s)) {
          const LowpassFactors& f = factors_.at({s.h, s.w});
          plans_.emplace(s, lowpass_cpu_plan(params_for(s), f.rows.data(), f.cols.data(),
                                             f.mask.empty() ? nullptr : f.mask.data()));
        }
      }
    }
  }

  LowpassParams params_for(const PlanarShape& s) const {
    const LowpassFactors& f = factors_.at({s.h, s.w});
    LowpassParams p;
    p.channels = s.c;
    p.height = s.h;
    p.width = s.w;
    p.rank_h = f.rank_h;
    p.rank_w = f.rank_w;
    p.masked = !f.mask.empty();
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
  // The factors go up with each launch (a few hundred KB at 224x224) in one copy through
  // DALI's pinned staging, so nothing device-side is cached across iterations or devices.
  template <typename T>
  void RunGpu(const std::vector<int>& samples, const PlanarShape& in, const T* x, T* y,
              ::dali::kernels::Scratchpad& scratch, cudaStream_t stream) const {
    const size_t n = samples.size();
    const LowpassParams p = params_for(in);
    const LowpassFactors& f = factors_.at({in.h, in.w});
    auto [rows, cols, mask] = scratch.ToContiguousGPU(stream, f.rows, f.cols, f.mask);
    float* work = scratch.AllocateGPU<float>(lowpass_cuda_scratch_floats(p, n));
    enforce_cuda(lowpass_cuda<T>(x, y, rows, cols, p.masked ? mask : nullptr,
                                 static_cast<int64_t>(n), p, work, stream),
                 "poisonkit: lowpass launch");
  }
#endif

 private:
  float keep_ = 0.3f;
  LowpassBasis basis_ = LowpassBasis::Dct;
  LowpassShape shape_ = LowpassShape::Square;
  bool clamp_ = true;
  std::map<std::pair<int, int>, LowpassFactors> factors_;  // by (H, W), built on first use
  std::map<PlanarShape, LowpassCpuPlan> plans_;           // CPU: by (C, H, W), likewise
};

}  // namespace poisonkit::dali_ops

// Schema and registration live in DALI's namespace, where its macros expect them.
namespace dali {

DALI_SCHEMA(poisonkit__lowpass)
    .DocStr(R"(Frequency low-pass (the FF of RSK+FF, Kim & Sandoval-Segura, 2024), per channel:
out = R^T (M o (R X C^T)) C, with R the kept orthonormal basis rows along H, C along W and M a
0/1 mask over the kept coefficients; uint8 output rounds to nearest and saturates, float output
is clamped to [0, 1] unless ``clamp`` is false. Equal to poisonkit.ops.lowpass with the same
``keep``, ``basis`` and ``shape``. The bases are built inside the operator for every image size
it meets (cached), so a batch may mix sizes.)")
    .NumInput(1)
    .InputDox(0, "images", "TensorList", "uint8 or float images, HWC (default) or CHW.")
    .InputLayout(0, {"HWC", "CHW"})
    .NumOutput(1)
    .AddOptionalArg("keep", R"(Kept fraction of each axis' frequencies, in (0, 1]: DCT rows
int(n * keep), Fourier |k| <= int(n * keep / 2) (see poisonkit.defenses.lowpass).)", 0.3f)
    .AddOptionalArg("basis", "'dct' (the reference's) or 'fft' (the real Fourier basis).",
                    std::string("dct"))
    .AddOptionalArg("shape", R"('square' (the reference's top-left block) or 'disk' (the
quarter ellipse / disk inscribed in it).)", std::string("square"))
    .AddOptionalArg("clamp", "Clamp float output to [0, 1] (uint8 output always saturates).",
                    true);

using poisonkit::dali_ops::Lowpass;
DALI_REGISTER_OPERATOR(poisonkit__lowpass, Lowpass<CPUBackend>, CPU);
#if defined(POISONKIT_WITH_CUDA)
DALI_REGISTER_OPERATOR(poisonkit__lowpass, Lowpass<GPUBackend>, GPU);
#endif

}  // namespace dali
