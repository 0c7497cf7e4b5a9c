// fn.poisonkit.project_out: the orthogonal projection defense (Sandoval-Segura et al.,
// NeurIPS 2023): every image, flattened in CHW order to D values in [0,1] units, loses its
// component in span(Q): x - Q Q^T x. Same kernels as the torch op project_out. Q comes from
// a .npy file (argument q_file, read once, checked once, uploaded once) or, on the CPU, from
// a second input holding Q^T per sample (the layout the kernels read, so nothing is copied).
#include <cmath>
#include <string>

#include "../kernels/projection.h"
#include "args.h"
#include "image_op.h"
#include "npy.h"
#if defined(POISONKIT_WITH_CUDA)
#include "dali/core/dev_buffer.h"
#endif

namespace poisonkit::dali_ops {

template <typename Backend>
class ProjectOut : public PlanarImageOp<ProjectOut<Backend>, Backend> {
  using Base = PlanarImageOp<ProjectOut<Backend>, Backend>;
  friend Base;
  static constexpr bool kGpu = !std::is_same_v<Backend, ::dali::CPUBackend>;

 public:
  explicit ProjectOut(const ::dali::OpSpec& spec) : Base(spec) {
    params_.clamp = spec.GetArgument<bool>("clamp");
    from_input_ = spec.NumRegularInput() == 2;
    const bool from_file = spec.HasArgument("q_file");
    DALI_ENFORCE(from_input_ != from_file,
                 "poisonkit.project_out: give Q either as argument `q_file` or as input 1, "
                 "exactly one of them");
    DALI_ENFORCE(!(kGpu && from_input_), "poisonkit.project_out: the GPU operator reads Q from "
                 "argument `q_file` (input 1 is for the CPU operator)");
    if (from_file) {
      const std::string path = spec.GetArgument<std::string>("q_file");
      NpyMatrix q = read_npy_matrix(path, "q_file");
      enforce_finite(q.values, "q_file");
      // The kernels take Q^T (K rows of D values).
      const int64_t D = q.rows, K = q.cols;
      // (not DALI_ENFORCE, which declares a variable `error` of its own)
      const std::string why = projection_shape_error(D, D, K, kGpu);
      if (!why.empty()) DALI_FAIL("argument `q_file`: ", path, ": ", why);
      qt_.resize(q.values.size());
      for (int64_t d = 0; d < D; ++d)
        for (int64_t k = 0; k < K; ++k) qt_[k * D + d] = q.values[d * K + k];
      params_.dim = D;
      params_.rank = static_cast<int>(K);
    }
  }

 protected:
  ::dali::DALIDataType OutputType(::dali::DALIDataType in) const override {
    return params_.clamp ? in : ::DALI_FLOAT;
  }

  void Prepare(const ::dali::Workspace& ws, const std::vector<PlanarShape>& shapes) override {
    if (from_input_) {
      const auto& q = ws.Input<::dali::CPUBackend>(1);
      DALI_ENFORCE(q.type() == ::DALI_FLOAT && q.sample_dim() == 2,
                   ::dali::make_string("input 1 (Q^T): expected float [K, D] per sample, got ",
                                       q.type(), " with ", q.sample_dim(), " dims"));
      ranks_.resize(shapes.size());
    }
    for (size_t i = 0; i < shapes.size(); ++i) {
      const PlanarShape& s = shapes[i];
      int64_t rows = params_.dim, cols = params_.rank;
      if (from_input_) {
        const auto sh = ws.Input<::dali::CPUBackend>(1).tensor_shape(i);
        rows = sh[1];  // Q^T is [K, D]: Q's rows are its columns
        cols = sh[0];
        ranks_[i] = static_cast<int>(cols);
      }
      const std::string why = projection_shape_error(s.volume(), rows, cols, kGpu);
      if (!why.empty()) DALI_FAIL("sample ", i, " (", s.c, "x", s.h, "x", s.w, "): ", why);
    }
    if (from_input_) q_input_ = &ws.Input<::dali::CPUBackend>(1);
  }

  ProjectionParams params_for(int sample, const PlanarShape& s) const {
    ProjectionParams p = params_;
    p.dim = s.volume();
    if (from_input_) p.rank = ranks_[sample];
    return p;
  }

  size_t CpuScratchFloats(int sample, const PlanarShape& s) const override {
    return projection_cpu_scratch_floats(params_for(sample, s));
  }

  static constexpr bool kUint8ToFloat = true;  // unclamped output is float32

  template <typename Tin, typename Tout>
  void RunCpu(int sample, const PlanarShape& s, const Tin* x, Tout* y, float* scratch) const {
    const float* qt = from_input_ ? q_input_->template tensor<float>(sample) : qt_.data();
    project_out_images_cpu<Tin, Tout>(x, y, 1, qt, params_for(sample, s), scratch);
  }

#if defined(POISONKIT_WITH_CUDA)
  // Q^T goes to the device once, on the first run, through DALI's pinned staging.
  template <typename Tin, typename Tout>
  void RunGpu(const std::vector<int>& samples, const PlanarShape& s, const Tin* x, Tout* y,
              ::dali::kernels::Scratchpad& scratch, cudaStream_t stream) const {
    if (qt_gpu_.empty()) {
      const float* staged = std::get<0>(scratch.ToContiguousGPU(stream, qt_));
      qt_gpu_.resize(qt_.size(), stream);
      enforce_cuda(cudaMemcpyAsync(qt_gpu_.data(), staged, qt_.size() * sizeof(float),
                                   cudaMemcpyDeviceToDevice, stream),
                   "poisonkit: project_out upload");
    }
    enforce_cuda(project_out_cuda<Tin, Tout>(x, y, static_cast<int64_t>(samples.size()),
                                             qt_gpu_.data(), params_for(samples[0], s), stream),
                 "poisonkit: project_out launch");
  }

  mutable ::dali::DeviceBuffer<float> qt_gpu_;
#endif

 private:
  std::vector<float> qt_;  // from q_file: Q^T [K x D]
  ProjectionParams params_;
  bool from_input_ = false;
  std::vector<int> ranks_;  // from input 1: K of each sample
  const ::dali::TensorList<::dali::CPUBackend>* q_input_ = nullptr;
};

}  // namespace poisonkit::dali_ops

// Schema and registration live in DALI's namespace, where its macros expect them.
namespace dali {

DALI_SCHEMA(poisonkit__project_out)
    .DocStr(R"(The orthogonal projection defense (Sandoval-Segura et al., NeurIPS 2023): every
image, read in [0, 1] units (uint8 / 255) and flattened in CHW order to D = C*H*W values, loses
its component in the span of the orthonormal columns of Q (D x K): x - Q Q^T x. Output is
float32 and leaves [0, 1], as in the reference; with ``clamp`` it has the input's type, clamped
to [0, 1] (uint8 rounded to nearest). Equal to poisonkit.ops.project_out. Q comes from
``q_file`` (read, checked and on the GPU uploaded once) or, on the CPU, from input 1;
poisonkit.dali.project_out takes a fitted Projection, a saved one or a matrix.)")
    .NumInput(1, 2)
    .InputDox(0, "images", "TensorList", "uint8 or float images, HWC (default) or CHW.")
    .InputDox(1, "qt", "TensorList", R"(CPU only, instead of ``q_file``: Q^T, float [K, D] per
sample (sample i is projected with its own; not checked for NaN per batch, which would cost as
much as the projection: check Q once before feeding it).)")
    .InputLayout(0, {"HWC", "CHW"})
    .NumOutput(1)
    .AddOptionalArg<std::string>("q_file", R"(Path of a .npy holding Q, float32 or float64
[D, K] (Projection.save_q writes one); D = C*H*W of every image.)", nullptr)
    .AddOptionalArg("clamp", "Clamp to [0, 1] and keep the input's type.", false);

using poisonkit::dali_ops::ProjectOut;
DALI_REGISTER_OPERATOR(poisonkit__project_out, ProjectOut<CPUBackend>, CPU);
#if defined(POISONKIT_WITH_CUDA)
DALI_REGISTER_OPERATOR(poisonkit__project_out, ProjectOut<GPUBackend>, GPU);
#endif

}  // namespace dali
