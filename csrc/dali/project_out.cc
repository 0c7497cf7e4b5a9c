// fn.poisonkit.project_out: the orthogonal projection defense (Sandoval-Segura et al.,
// NeurIPS 2023): every image, flattened in CHW order to D values in [0,1] units, loses its
// component in span(Q): x - Q Q^T x. Same kernels as the torch op project_out. Q comes as an
// argument (a fitted Projection is a torch file, which C++ does not read: the Python helper
// poisonkit.dali.project_out loads it and passes Q's values).
#include <cmath>

#include "../kernels/projection.h"
#include "args.h"
#include "image_op.h"
#if defined(POISONKIT_WITH_CUDA)
#include "dali/core/dev_buffer.h"
#endif

namespace poisonkit::dali_ops {

template <typename Backend>
class ProjectOut : public PlanarImageOp<ProjectOut<Backend>, Backend> {
  using Base = PlanarImageOp<ProjectOut<Backend>, Backend>;
  friend Base;

 public:
  explicit ProjectOut(const ::dali::OpSpec& spec) : Base(spec) {
    const auto shape = spec.GetRepeatedArgument<int>("q_shape");
    DALI_ENFORCE(shape.size() == 2 && shape[0] >= 1 && shape[1] >= 1 && shape[1] <= shape[0],
                 ::dali::make_string("argument `q_shape`: expected [D, K] with 1 <= K <= D, got ",
                                     ::dali::TensorShape<>(shape.begin(), shape.end())));
    const int64_t D = shape[0];
    const int K = shape[1];
    const auto q = spec.GetRepeatedArgument<float>("q");
    DALI_ENFORCE(static_cast<int64_t>(q.size()) == D * K,
                 ::dali::make_string("argument `q`: expected D * K = ", D * K, " values (",
                                     "`q_shape` [", D, ", ", K, "]), got ", q.size()));
    enforce_finite(q, "q");
#if defined(POISONKIT_WITH_CUDA)
    DALI_ENFORCE((std::is_same_v<Backend, ::dali::CPUBackend> || K <= kProjectionCudaMaxRank),
                 ::dali::make_string("argument `q_shape`: the GPU operator takes at most ",
                                     kProjectionCudaMaxRank, " columns, got ", K));
#endif
    // The kernels take Q^T (K rows of D values); q is Q row-major.
    qt_.resize(q.size());
    for (int64_t d = 0; d < D; ++d)
      for (int k = 0; k < K; ++k) qt_[k * D + d] = q[d * K + k];
    params_.dim = D;
    params_.rank = K;
    params_.clamp = spec.GetArgument<bool>("clamp");
  }

 protected:
  ::dali::DALIDataType OutputType(::dali::DALIDataType in) const override {
    return params_.clamp ? in : ::DALI_FLOAT;
  }

  void Prepare(const ::dali::Workspace&, const std::vector<PlanarShape>& shapes) override {
    for (size_t i = 0; i < shapes.size(); ++i) {
      const PlanarShape& s = shapes[i];
      DALI_ENFORCE(s.volume() == params_.dim,
                   ::dali::make_string("input 0 (images): expected C*H*W = ", params_.dim,
                                       " values per image (`q_shape`[0]), sample ", i, " is ",
                                       s.c, "x", s.h, "x", s.w));
    }
  }

  size_t CpuScratchFloats(int, const PlanarShape&) const override {
    return projection_cpu_scratch_floats(params_);
  }

  static constexpr bool kUint8ToFloat = true;  // unclamped output is float32

  template <typename Tin, typename Tout>
  void RunCpu(int, const PlanarShape&, const Tin* x, Tout* y, float* scratch) const {
    project_out_images_cpu<Tin, Tout>(x, y, 1, qt_.data(), params_, scratch);
  }

#if defined(POISONKIT_WITH_CUDA)
  // Q^T is copied to the device once, on the first run (on DALI's stream).
  template <typename Tin, typename Tout>
  void RunGpu(const std::vector<int>& samples, const PlanarShape&, const Tin* x, Tout* y,
              ::dali::kernels::Scratchpad&, cudaStream_t stream) const {
    if (qt_gpu_.empty()) qt_gpu_.from_host(qt_, stream);
    enforce_cuda(project_out_cuda<Tin, Tout>(x, y, static_cast<int64_t>(samples.size()),
                                             qt_gpu_.data(),
                                             params_, stream),
                 "poisonkit: project_out launch");
  }

  mutable ::dali::DeviceBuffer<float> qt_gpu_;
#endif

 private:
  std::vector<float> qt_;
  ProjectionParams params_;
};

}  // namespace poisonkit::dali_ops

// Schema and registration live in DALI's namespace, where its macros expect them.
namespace dali {

DALI_SCHEMA(poisonkit__project_out)
    .DocStr(R"(The orthogonal projection defense (Sandoval-Segura et al., NeurIPS 2023): every
image, read in [0, 1] units (uint8 / 255) and flattened in CHW order to D = C*H*W values, loses
its component in the span of the orthonormal columns of Q (D x K): x - Q Q^T x. Output is
float32 and leaves [0, 1], as in the reference; with ``clamp`` it has the input's type, clamped
to [0, 1] (uint8 rounded to nearest). Equal to poisonkit.ops.project_out. Q is an argument:
poisonkit.dali.project_out takes a fitted Projection or the path of a saved one.)")
    .NumInput(1)
    .InputDox(0, "images", "TensorList", "uint8 or float images, HWC (default) or CHW.")
    .InputLayout(0, {"HWC", "CHW"})
    .NumOutput(1)
    .AddArg("q", "Q's D * K values, row-major (Q[d, k] at d * K + k).", ::DALI_FLOAT_VEC)
    .AddArg("q_shape", "Q's shape [D, K]; D = C*H*W of every image.", ::DALI_INT_VEC)
    .AddOptionalArg("clamp", "Clamp to [0, 1] and keep the input's type.", false);

using poisonkit::dali_ops::ProjectOut;
DALI_REGISTER_OPERATOR(poisonkit__project_out, ProjectOut<CPUBackend>, CPU);
#if defined(POISONKIT_WITH_CUDA)
DALI_REGISTER_OPERATOR(poisonkit__project_out, ProjectOut<GPUBackend>, GPU);
#endif

}  // namespace dali
