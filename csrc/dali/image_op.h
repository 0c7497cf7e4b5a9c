// Base of every poisonkit DALI operator: input 0 is a batch of images (HWC by default, CHW
// when the layout says so; uint8 or float32), output 0 the processed images in the same
// layout and, unless OutputType says otherwise (uint8 in, float out), the same type. The
// base validates the images, plans the output shapes, converts the layout around the shared
// planar kernels and schedules the work: one sample per task on DALI's thread pool (CPU), one
// launch per group of same-shaped samples on DALI's stream (GPU).
//
// An operator derives from PlanarImageOp<Itself, Backend> (CRTP) and writes, once for every
// dtype, the public templates (the base calls them, so it needs no friendship)
//   template <typename Tin, typename Tout>
//   void RunCpu(int sample, const PlanarShape& in, const Tin* x, Tout* y, float* scratch) const;
//   template <typename Tin, typename Tout>
//   void RunGpu(const std::vector<int>& samples, const PlanarShape& in, const Tin* x, Tout* y,
//               ::dali::kernels::Scratchpad& scratch, cudaStream_t stream) const;
// (CPU: one planar image, scratch holding CpuScratchFloats floats for this thread; GPU: the
// samples of one shape as contiguous NCHW on the device), plus the virtual hooks below.
// Tin = Tout unless the operator sets kUint8ToFloat; see filter2d_op.h.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "dali/pipeline/operator/operator.h"
#include "layout.h"
#if defined(POISONKIT_WITH_CUDA)
#include "dali/kernels/dynamic_scratchpad.h"
#endif

namespace poisonkit::dali_ops {

#if defined(POISONKIT_WITH_CUDA)
inline void enforce_cuda(cudaError_t err, const char* what) {
  DALI_ENFORCE(err == cudaSuccess, ::dali::make_string(what, ": ", cudaGetErrorString(err)));
}
#endif

// A kernel's parameters (ArParams, LspParams, Filter2dParams, ...: any struct with channels,
// height and width) at one sample's shape.
template <typename Params>
Params with_shape(Params params, const PlanarShape& s) {
  params.channels = s.c;
  params.height = s.h;
  params.width = s.w;
  return params;
}

template <typename Derived, typename Backend>
class PlanarImageOp : public ::dali::Operator<Backend> {
 public:
  explicit PlanarImageOp(const ::dali::OpSpec& spec) : ::dali::Operator<Backend>(spec) {}

 protected:
  // Whether the operator has the uint8 -> float path (OutputType float for uint8 input).
  static constexpr bool kUint8ToFloat = false;

  // ---- Hooks. Prepare reads and validates this batch's arguments (host side).
  virtual void Prepare(const ::dali::Workspace& ws, const std::vector<PlanarShape>& shapes) = 0;
  virtual PlanarShape OutputShape(int sample, const PlanarShape& in) const { return in; }
  // The output type: the input's, or float for uint8 input (needs kUint8ToFloat).
  virtual ::dali::DALIDataType OutputType(::dali::DALIDataType in) const { return in; }
  // CPU: scratch floats one thread needs for a sample of shape `in`.
  virtual size_t CpuScratchFloats(int sample, const PlanarShape& in) const { return 0; }

  bool SetupImpl(std::vector<::dali::OutputDesc>& output_desc,
                 const ::dali::Workspace& ws) override {
    const auto& in = ws.Input<Backend>(0);
    DALI_ENFORCE(in.type() == ::DALI_UINT8 || in.type() == ::DALI_FLOAT,
                 ::dali::make_string("input 0 (images): expected uint8 or float, got ", in.type()));
    DALI_ENFORCE(in.sample_dim() == 3,
                 ::dali::make_string("input 0 (images): expected HWC or CHW images (3 dims), got ",
                                     in.sample_dim(), " dims"));
    layout_ = in.GetLayout() == "CHW" ? ImageLayout::CHW : ImageLayout::HWC;
    const int n = in.num_samples();
    shapes_.resize(n);
    for (int i = 0; i < n; ++i) {
      const auto sh = in.tensor_shape(i);
      shapes_[i] = layout_ == ImageLayout::CHW
                       ? PlanarShape{static_cast<int>(sh[0]), static_cast<int>(sh[1]),
                                     static_cast<int>(sh[2])}
                       : PlanarShape{static_cast<int>(sh[2]), static_cast<int>(sh[0]),
                                     static_cast<int>(sh[1])};
      DALI_ENFORCE(shapes_[i].volume() > 0,
                   ::dali::make_string("input 0 (images): sample ", i, " is empty (shape ", sh,
                                       ")"));
    }
    Prepare(ws, shapes_);
    out_shapes_.resize(n);
    ::dali::TensorListShape<3> out_shape(n);
    for (int i = 0; i < n; ++i) {
      const PlanarShape o = out_shapes_[i] = OutputShape(i, shapes_[i]);
      out_shape.set_tensor_shape(i, layout_ == ImageLayout::CHW
                                        ? ::dali::TensorShape<3>{o.c, o.h, o.w}
                                        : ::dali::TensorShape<3>{o.h, o.w, o.c});
    }
    output_desc.resize(1);
    output_desc[0] = {out_shape, OutputType(in.type())};
    return true;  // DALI 2.x: outputs are always inferred here
  }

  void RunImpl(::dali::Workspace& ws) override {
    const auto& in = ws.Input<Backend>(0);
    auto& out = ws.Output<Backend>(0);
    out.SetLayout(in.GetLayout());
    if (in.type() == ::DALI_FLOAT) {
      Run<float, float>(ws, in, out);
    } else if (out.type() == ::DALI_UINT8) {
      Run<uint8_t, uint8_t>(ws, in, out);
    } else if constexpr (Derived::kUint8ToFloat) {
      Run<uint8_t, float>(ws, in, out);
    } else {
      DALI_FAIL("poisonkit: internal error: this operator has no uint8 -> float path");
    }
  }

  std::vector<PlanarShape> shapes_, out_shapes_;
  ImageLayout layout_ = ImageLayout::HWC;

 private:
  const Derived& self() const { return static_cast<const Derived&>(*this); }

  template <typename Tin, typename Tout, typename List, typename OutList>
  void Run(::dali::Workspace& ws, const List& in, OutList& out) {
    if constexpr (std::is_same_v<Backend, ::dali::CPUBackend>) {
      RunAllCpu<Tin, Tout>(ws, in, out);
    } else {
#if defined(POISONKIT_WITH_CUDA)
      RunAllGpu<Tin, Tout>(ws, in, out);
#endif
    }
  }

  // Per-thread buffers, reused across iterations: planar copies of HWC images and scratch.
  struct ThreadBuffers {
    std::vector<float> scratch, planar_in, planar_out;
  };

  // A float vector resized to hold count elements of T (uint8 aliases anything).
  template <typename T>
  static T* as_buffer(std::vector<float>& v, size_t count) {
    v.resize((count * sizeof(T) + sizeof(float) - 1) / sizeof(float));
    return reinterpret_cast<T*>(v.data());
  }

  template <typename Tin, typename Tout>
  void RunAllCpu(::dali::Workspace& ws, const ::dali::TensorList<::dali::CPUBackend>& in,
                 ::dali::TensorList<::dali::CPUBackend>& out) {
    auto& pool = ws.GetThreadPool();
    buffers_.resize(pool.NumThreads());
    for (int i = 0; i < in.num_samples(); ++i) {
      pool.AddWork([&, i](int thread) {
        RunSampleCpu<Tin, Tout>(i, in.template tensor<Tin>(i),
                                out.template mutable_tensor<Tout>(i), buffers_[thread]);
      }, shapes_[i].volume());
    }
    pool.RunAll();
  }

  template <typename Tin, typename Tout>
  void RunSampleCpu(int i, const Tin* x, Tout* y, ThreadBuffers& b) const {
    const PlanarShape& s = shapes_[i];
    const PlanarShape& o = out_shapes_[i];
    float* scratch = as_buffer<float>(b.scratch, CpuScratchFloats(i, s));
    if (layout_ == ImageLayout::CHW) {
      self().RunCpu(i, s, x, y, scratch);
      return;
    }
    Tin* px = as_buffer<Tin>(b.planar_in, s.volume());
    Tout* py = as_buffer<Tout>(b.planar_out, o.volume());
    to_planar(x, s, strides_of(layout_, s), px);
    self().RunCpu(i, s, px, py, scratch);
    from_planar(py, o, strides_of(layout_, o), y);
  }

#if defined(POISONKIT_WITH_CUDA)
  // Host arrays go up through DALI's pinned staging (ToContiguousGPU), never from pageable
  // memory.
  template <typename Tin, typename Tout>
  void RunAllGpu(::dali::Workspace& ws, const ::dali::TensorList<::dali::GPUBackend>& in,
                 ::dali::TensorList<::dali::GPUBackend>& out) {
    const cudaStream_t stream = ws.stream();
    ::dali::kernels::DynamicScratchpad scratch(stream);
    // Samples with the same input and output shape form one NCHW launch.
    std::map<std::pair<PlanarShape, PlanarShape>, std::vector<int>> groups;
    for (int i = 0; i < in.num_samples(); ++i) groups[{shapes_[i], out_shapes_[i]}].push_back(i);
    for (const auto& [shape, samples] : groups) {
      const auto& [s, o] = shape;
      const int n = static_cast<int>(samples.size());
      std::vector<const Tin*> srcs;
      std::vector<Tout*> dsts;
      for (int i : samples) {
        srcs.push_back(in.template tensor<Tin>(i));
        dsts.push_back(out.template mutable_tensor<Tout>(i));
      }
      Tin* px = scratch.AllocateGPU<Tin>(n * s.volume());
      Tout* py = scratch.AllocateGPU<Tout>(n * o.volume());
      const Tin* const* srcs_gpu = std::get<0>(scratch.ToContiguousGPU(stream, srcs));
      enforce_cuda(gather_planar_cuda<Tin>(srcs_gpu, px, n, s, strides_of(layout_, s), stream),
                   "poisonkit: layout copy");
      self().RunGpu(samples, s, px, py, scratch, stream);
      Tout* const* dsts_gpu = std::get<0>(scratch.ToContiguousGPU(stream, dsts));
      enforce_cuda(scatter_planar_cuda<Tout>(py, dsts_gpu, n, o, strides_of(layout_, o), stream),
                   "poisonkit: layout copy");
    }
  }
#endif

  std::vector<ThreadBuffers> buffers_;
};

}  // namespace poisonkit::dali_ops
