// fn.poisonkit.one_pixel: the one-pixel shortcut (Wu et al., ICLR 2023). Every image of class
// k gets pixel (rows[k], cols[k]) set to colours[k] (values in [0, 1]; uint8 gets round(255 v)):
// the same per-element function as the torch op one_pixel_apply. The pixels come from the
// search (poisonkit.poisons.one_pixel.OnePixelShortcut.search).
#include <cmath>

#include "../kernels/one_pixel.h"
#include "args.h"
#include "image_op.h"
#include "registration.h"

namespace poisonkit::dali_ops {

template <typename Backend>
class OnePixel : public PlanarImageOp<OnePixel<Backend>, Backend> {
 public:
  explicit OnePixel(const ::dali::OpSpec& spec) : PlanarImageOp<OnePixel, Backend>(spec) {
    rows_ = spec.GetRepeatedArgument<int>("rows");
    cols_ = spec.GetRepeatedArgument<int>("cols");
    colours_ = spec.GetRepeatedArgument<float>("colours");
    num_classes_ = static_cast<int>(rows_.size());
    DALI_ENFORCE(num_classes_ >= 1 && cols_.size() == rows_.size(),
                 ::dali::make_string("arguments `rows`, `cols`: expected one value per class ",
                                     "each, got ", rows_.size(), " and ", cols_.size()));
    DALI_ENFORCE(colours_.size() % num_classes_ == 0 && !colours_.empty(),
                 ::dali::make_string("argument `colours`: expected num_classes * C values ",
                                     "([K, C]), got ", colours_.size(), " for K = ",
                                     num_classes_));
    channels_ = static_cast<int>(colours_.size() / num_classes_);
    enforce_finite(colours_, "colours");
    for (size_t i = 0; i < colours_.size(); ++i)
      DALI_ENFORCE(colours_[i] >= 0.0f && colours_[i] <= 1.0f,
                   ::dali::make_string("argument `colours`: expected values in [0, 1], got ",
                                       colours_[i], " at index ", i));
  }

 protected:
  void Prepare(const ::dali::Workspace& ws, const std::vector<PlanarShape>& shapes) override {
    const int n = static_cast<int>(shapes.size());
    labels_ = per_sample_integers(ws.Input<::dali::CPUBackend>(1), n, "input 1 (labels)");
    enforce_range(labels_, 0, num_classes_, "input 1 (labels)");
    for (int i = 0; i < n; ++i) {
      const PlanarShape& s = shapes[i];
      DALI_ENFORCE(s.c == channels_,
                   ::dali::make_string("input 0 (images): expected ", channels_, " channels (",
                                       "from `colours`), sample ", i, " has ", s.c));
      const int64_t k = labels_[i];
      DALI_ENFORCE(rows_[k] >= 0 && rows_[k] < s.h && cols_[k] >= 0 && cols_[k] < s.w,
                   ::dali::make_string("arguments `rows`, `cols`: class ", k, "'s pixel (",
                                       rows_[k], ", ", cols_[k], ") lies outside sample ", i,
                                       " (", s.h, "x", s.w, ")"));
    }
  }

 public:  // called by PlanarImageOp
  template <typename T>
  void RunCpu(int i, const PlanarShape& in, const T* x, T* y, float*) const {
    const int64_t k = labels_[i];
    one_pixel_apply_sample_cpu<T>(x, y, in.c, int64_t{in.h} * in.w, pixel(k, in),
                                  colours_.data() + k * channels_);
  }

#if defined(POISONKIT_WITH_CUDA)
  template <typename T>
  void RunGpu(const std::vector<int>& samples, const PlanarShape& in, const T* x, T* y,
              ::dali::kernels::Scratchpad& scratch, cudaStream_t stream) const {
    std::vector<int64_t> labels, positions;
    for (int i : samples) labels.push_back(labels_[i]);
    for (int k = 0; k < num_classes_; ++k) positions.push_back(pixel(k, in));
    // One copy through DALI's pinned staging (not three from pageable vectors).
    const auto [labels_gpu, positions_gpu, colours] =
        scratch.ToContiguousGPU(stream, labels, positions, colours_);
    enforce_cuda(one_pixel_apply_cuda<T>(x, y, labels_gpu, positions_gpu, colours,
                                         static_cast<int64_t>(samples.size()), in.c,
                                         int64_t{in.h} * in.w, stream),
                 "poisonkit: one_pixel launch");
  }
#endif

 private:
  // Class k's pixel as a plane offset (row * W + col); Prepare checked it lies inside.
  int64_t pixel(int64_t k, const PlanarShape& in) const {
    return int64_t{rows_[k]} * in.w + cols_[k];
  }

  std::vector<int> rows_, cols_;
  std::vector<float> colours_;
  int num_classes_ = 0, channels_ = 0;
  std::vector<int64_t> labels_;
};

}  // namespace poisonkit::dali_ops

namespace dali {

POISONKIT_IMAGE_SCHEMA(poisonkit__one_pixel, 2) POISONKIT_LABELS_INPUT
    .DocStr(R"(The one-pixel shortcut (Wu et al., ICLR 2023): sets pixel (rows[k], cols[k]) of
every image of class k to colours[k] (in [0, 1]; uint8 output gets round(255 v)). Equal to the
torch op poisonkit.ops.one_pixel_apply / OnePixelShortcut for the same pixels. Apply it to the
stored images before any augmentation.)")
    .AddArg("rows", "Row of each class's pixel [K].", ::DALI_INT_VEC)
    .AddArg("cols", "Column of each class's pixel [K].", ::DALI_INT_VEC)
    .AddArg("colours", "Each class's colour [K, C], flattened, values in [0, 1].",
            ::DALI_FLOAT_VEC);

DALI_REGISTER_OPERATOR(poisonkit__one_pixel, poisonkit::dali_ops::OnePixel<CPUBackend>, CPU);
POISONKIT_REGISTER_GPU(poisonkit__one_pixel, poisonkit::dali_ops::OnePixel);

}  // namespace dali
