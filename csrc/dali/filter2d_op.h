// Base of the operators built on the shared filter2d kernel (class-wise blur, sharpening):
// a subclass only chooses the options (params_) and one kernel per sample (weights_), in
// PrepareKernels; this class checks the geometry and calls filter2d's CPU and CUDA drivers.
#pragma once
#include <string>
#include <vector>

#include "../kernels/filter2d.h"
#include "image_op.h"

namespace poisonkit::dali_ops {

Padding parse_padding(const std::string& name);

template <typename Backend>
class Filter2dOp : public PlanarImageOp<Filter2dOp<Backend>, Backend> {
 public:
  using PlanarImageOp<Filter2dOp, Backend>::PlanarImageOp;

 protected:
  // Fills params_ (kernel size and options) and weights_ (kernel_h * kernel_w floats per
  // sample, in batch order).
  virtual void PrepareKernels(const ::dali::Workspace& ws,
                              const std::vector<PlanarShape>& shapes) = 0;

  void Prepare(const ::dali::Workspace& ws, const std::vector<PlanarShape>& shapes) override {
    PrepareKernels(ws, shapes);
    DALI_ENFORCE(weights_.size() == shapes.size() * params_.taps(), "poisonkit: internal error: "
                 "one kernel per sample expected");
    for (size_t i = 0; i < shapes.size(); ++i) {
      const std::string error = filter2d_padding_error(with_shape(params_, shapes[i]));
      if (!error.empty()) DALI_FAIL(::dali::make_string("argument `padding`: ", error, " (sample ",
                                                      i, ")"));
    }
  }

  PlanarShape OutputShape(int, const PlanarShape& in) const override {
    const Filter2dParams p = with_shape(params_, in);
    return {in.c, p.out_h(), p.out_w()};
  }

  size_t CpuScratchFloats(int, const PlanarShape& in) const override {
    return filter2d_cpu_scratch_floats(with_shape(params_, in));
  }

 public:  // called by PlanarImageOp
  template <typename T>
  void RunCpu(int i, const PlanarShape& in, const T* x, T* y, float* scratch) const {
    filter2d_image_cpu<T>(x, y, kernel_of(i), 0, with_shape(params_, in), scratch);
  }

#if defined(POISONKIT_WITH_CUDA)
  template <typename T>
  void RunGpu(const std::vector<int>& samples, const PlanarShape& in, const T* x, T* y,
              ::dali::kernels::Scratchpad& scratch, cudaStream_t stream) const {
    const Filter2dParams p = with_shape(params_, in);
    const int64_t n = static_cast<int64_t>(samples.size());
    std::vector<float> weights;
    weights.reserve(n * p.taps());
    for (int i : samples) weights.insert(weights.end(), kernel_of(i), kernel_of(i) + p.taps());
    float* work = scratch.AllocateGPU<float>(filter2d_cuda_scratch_floats(p, n));
    const float* weights_gpu = std::get<0>(scratch.ToContiguousGPU(stream, weights));
    enforce_cuda(filter2d_cuda<T>(x, y, weights_gpu, n, p, work, stream),
                 "poisonkit: filter2d launch");
  }
#endif

 protected:
  const float* kernel_of(int sample) const { return weights_.data() + sample * params_.taps(); }

  Filter2dParams params_;
  std::vector<float> weights_;
};

}  // namespace poisonkit::dali_ops
