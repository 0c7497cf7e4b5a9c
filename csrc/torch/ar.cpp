// poisonkit AR ops: schemas, argument validation and the CPU implementations.
//   ar_canvas: the N(0,1) canvas draws of each sample (what generation starts from)
//   ar_generate: AR perturbations, float32 [N, C, H, W]
//   ar_poison: images plus their perturbations, clamped (and rounded for uint8)
//   ar_filter: every class's AR-filter valid response, float32 [N, K, H-2, W-2]

#include "ar_args.h"
#include "checks.h"
#include "parallel.h"
#include "registration.h"

namespace poisonkit {

namespace {

void check_canvas_size(int64_t channels, int64_t canvas_h, int64_t canvas_w, const char* op) {
  check_kernel_args(ar_canvas_error(channels, canvas_h, canvas_w), op);
}

// Work per AR sample: its canvas draws (about 8 units each: Philox, log, sine) and the
// recursion's 8 taps per canvas value.
int64_t ar_work(const ArParams& p) { return 16 * p.channels * p.canvas_plane(); }

void check_coeffs(const at::Tensor& coeffs, const char* op) {
  TORCH_CHECK(coeffs.scalar_type() == at::kFloat, op, ": coeffs must be float32, got ",
              coeffs.scalar_type());
  TORCH_CHECK(coeffs.dim() == 4 && coeffs.size(2) == 3 && coeffs.size(3) == 3 &&
                  coeffs.size(0) > 0 && coeffs.size(1) > 0,
              op, ": coeffs must be [K, C, 3, 3] with K, C >= 1, got shape ", coeffs.sizes());
  check_finite_param(coeffs, op, "coeffs");
}

}  // namespace

ArParams ar_generate_params(const at::Tensor& coeffs, const at::Tensor& labels,
                            const at::Tensor& indices, int64_t key, int64_t height,
                            int64_t width, int64_t crop, std::optional<double> eps, double p) {
  check_coeffs(coeffs, "ar_generate");
  // On CUDA the kernels check the label and index values (ArParams::num_classes, reported
  // with the status flags read back after the launch): no host sync here.
  const bool scan = coeffs.is_cpu();
  const int64_t n = check_sample_indices(indices, coeffs.device(), "ar_generate", scan);
  check_labels(labels, n, coeffs.size(0), coeffs.device(), "ar_generate", scan);
  TORCH_CHECK(height >= 1 && width >= 1, "ar_generate: height and width must be >= 1, got ",
              height, "x", width);
  TORCH_CHECK(crop >= 0, "ar_generate: crop must be >= 0, got ", crop);
  TORCH_CHECK(height < kArMaxCanvasDraws && width < kArMaxCanvasDraws && crop < kArMaxCanvasDraws,
              "ar_generate: height, width and crop must each be below 2^33, got ", height, ", ",
              width, ", ", crop);
  check_canvas_size(coeffs.size(1), height + crop, width + crop, "ar_generate");
  ArParams params;
  params.channels = static_cast<int>(coeffs.size(1));
  params.height = static_cast<int>(height);
  params.width = static_cast<int>(width);
  params.crop = static_cast<int>(crop);
  params.key = static_cast<uint64_t>(key);
  if (!eps.has_value()) {
    params.norm = ArNorm::None;
    return params;
  }
  TORCH_CHECK(ar_eps_error(*eps).empty(), "ar_generate: ", ar_eps_error(*eps),
              " (or None for the unscaled process)");
  check_kernel_args(ar_p_error(p), "ar_generate");
  params.eps = static_cast<float>(*eps);
  params.norm = p == 2.0 ? ArNorm::L2 : ArNorm::Linf;
  return params;
}

ArParams ar_poison_params(const at::Tensor& x, const at::Tensor& coeffs, const at::Tensor& labels,
                          const at::Tensor& indices, int64_t key, int64_t crop, double eps,
                          double p) {
  check_image_batch(x, "ar_poison");
  check_same_device(coeffs, x, "ar_poison", "coeffs");
  TORCH_CHECK(x.size(0) == indices.size(0), "ar_poison: x holds ", x.size(0),
              " images but indices holds ", indices.size(0));
  TORCH_CHECK(coeffs.dim() == 4 && x.size(1) == coeffs.size(1), "ar_poison: x has ", x.size(1),
              " channels but coeffs have shape ", coeffs.sizes());
  return ar_generate_params(coeffs, labels, indices, key, x.size(2), x.size(3), crop, eps, p);
}

void check_ar_finite(const at::Tensor& finite, const at::Tensor& labels,
                     const at::Tensor& indices, int64_t num_classes) {
  const at::Tensor flags = finite.cpu();  // the one host sync of a CUDA call
  const uint8_t* status = flags.data_ptr<uint8_t>();
  for (int64_t i = 0; i < flags.numel(); ++i) {
    if (status[i] == kArBadLabel || status[i] == kArBadIndex) {
      // the value scans name the offending values (an error path: its syncs do not matter)
      check_sample_indices(indices, indices.device(), "ar_generate");
      check_labels(labels, indices.size(0), num_classes, labels.device(), "ar_generate");
    }
    TORCH_CHECK(status[i] == kArOk, "ar_generate: the AR process of class ",
                labels[i].item<int64_t>(),
                " overflows float32 (unstable coefficients; draw them with "
                "poisonkit.poisons.ar.sample_coefficients)");
  }
}

ArParams ar_canvas_params(const at::Tensor& indices, int64_t key, int64_t channels,
                          int64_t height, int64_t width) {
  check_sample_indices(indices, indices.device(), "ar_canvas");
  TORCH_CHECK(channels >= 1 && height >= 1 && width >= 1,
              "ar_canvas: channels, height and width must be >= 1, got ", channels, ", ", height,
              ", ", width);
  check_canvas_size(channels, height, width, "ar_canvas");
  ArParams params;
  params.channels = static_cast<int>(channels);
  params.height = static_cast<int>(height);
  params.width = static_cast<int>(width);
  params.key = static_cast<uint64_t>(key);
  return params;
}

void check_ar_filter_args(const at::Tensor& x, const at::Tensor& coeffs) {
  check_coeffs(coeffs, "ar_filter");
  check_image_batch(x, "ar_filter");
  TORCH_CHECK(x.size(1) == coeffs.size(1), "ar_filter: x has ", x.size(1),
              " channels but coeffs are for ", coeffs.size(1));
  TORCH_CHECK(x.size(2) >= 3 && x.size(3) >= 3, "ar_filter: x must be at least 3x3, got ",
              x.size(2), "x", x.size(3));
  check_same_device(coeffs, x, "ar_filter", "coeffs");
}

namespace {

at::Tensor ar_generate_cpu(const at::Tensor& coeffs_in, const at::Tensor& labels_in,
                           const at::Tensor& indices_in, int64_t key, int64_t height,
                           int64_t width, int64_t crop, std::optional<double> eps, double p) {
  const ArParams params =
      ar_generate_params(coeffs_in, labels_in, indices_in, key, height, width, crop, eps, p);
  const at::Tensor coeffs = coeffs_in.contiguous();
  const at::Tensor labels = labels_in.contiguous();
  const at::Tensor indices = indices_in.contiguous();
  const int64_t n = indices.size(0);
  at::Tensor out = at::empty({n, params.channels, height, width}, coeffs.options());
  const float* c = coeffs.data_ptr<float>();
  const int64_t* lab = labels.data_ptr<int64_t>();
  const int64_t* idx = indices.data_ptr<int64_t>();
  float* dst = out.data_ptr<float>();
  const int64_t sample_size = params.channels * params.out_plane();
  at::Tensor finite = at::empty({n}, indices.options().dtype(at::kByte));
  uint8_t* ok = finite.data_ptr<uint8_t>();
  parallel_items(n, ar_work(params), ar_cpu_scratch_floats(params),
                 [&](int64_t begin, int64_t end, float* scratch) {
                   for (int64_t i = begin; i < end; ++i) {
                     ok[i] = ar_generate_sample_cpu(c + lab[i] * params.channels * kArTaps,
                                                    static_cast<uint64_t>(idx[i]), params,
                                                    dst + i * sample_size, scratch);
                   }
                 });
  check_ar_finite(finite, labels, indices, coeffs.size(0));
  return out;
}

template <typename T>
void ar_poison_batch_cpu(const at::Tensor& x, const at::Tensor& coeffs, const at::Tensor& labels,
                         const at::Tensor& indices, const ArParams& params, at::Tensor& out,
                         uint8_t* ok) {
  const T* src = x.data_ptr<T>();
  T* dst = out.data_ptr<T>();
  const float* c = coeffs.data_ptr<float>();
  const int64_t* lab = labels.data_ptr<int64_t>();
  const int64_t* idx = indices.data_ptr<int64_t>();
  const int64_t sample_size = params.channels * params.out_plane();
  parallel_items(x.size(0), ar_work(params), ar_poison_cpu_scratch_floats(params),
                 [&](int64_t begin, int64_t end, float* scratch) {
                   for (int64_t i = begin; i < end; ++i) {
                     ok[i] = ar_poison_sample_cpu<T>(src + i * sample_size, dst + i * sample_size,
                                                     c + lab[i] * params.channels * kArTaps,
                                                     static_cast<uint64_t>(idx[i]), params,
                                                     scratch);
                   }
                 });
}

at::Tensor ar_poison_cpu(const at::Tensor& x_in, const at::Tensor& coeffs_in,
                         const at::Tensor& labels_in, const at::Tensor& indices_in, int64_t key,
                         int64_t crop, double eps, double p) {
  const ArParams params =
      ar_poison_params(x_in, coeffs_in, labels_in, indices_in, key, crop, eps, p);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor coeffs = coeffs_in.contiguous();
  const at::Tensor labels = labels_in.contiguous();
  const at::Tensor indices = indices_in.contiguous();
  at::Tensor out = at::empty_like(x);
  at::Tensor finite = at::empty({x.size(0)}, indices.options().dtype(at::kByte));
  dispatch_image_dtype(x, [&]<typename T>() {
    ar_poison_batch_cpu<T>(x, coeffs, labels, indices, params, out, finite.data_ptr<uint8_t>());
  });
  check_ar_finite(finite, labels, indices, coeffs.size(0));
  return out;
}

at::Tensor ar_canvas_cpu(const at::Tensor& indices_in, int64_t key, int64_t channels,
                         int64_t height, int64_t width) {
  const ArParams params = ar_canvas_params(indices_in, key, channels, height, width);
  const at::Tensor indices = indices_in.contiguous();
  const int64_t n = indices.size(0);
  at::Tensor out = at::empty({n, channels, height, width}, indices.options().dtype(at::kFloat));
  const int64_t* idx = indices.data_ptr<int64_t>();
  float* dst = out.data_ptr<float>();
  const int64_t size = channels * height * width;
  // Work per sample: its draws, about 8 units each (a Philox block per 4 draws, logs, sines).
  parallel_items(n, 8 * size, 0, [&](int64_t begin, int64_t end, float*) {
    for (int64_t i = begin; i < end; ++i)
      ar_canvas_sample_cpu(static_cast<uint64_t>(idx[i]), params, dst + i * size);
  });
  return out;
}

template <typename T>
void ar_filter_batch_cpu(const at::Tensor& x, const at::Tensor& coeffs, at::Tensor& out) {
  const int K = static_cast<int>(coeffs.size(0)), C = static_cast<int>(x.size(1));
  const int H = static_cast<int>(x.size(2)), W = static_cast<int>(x.size(3));
  const int64_t in_size = static_cast<int64_t>(C) * H * W;
  const int64_t out_size = static_cast<int64_t>(K) * (H - 2) * (W - 2);
  const T* src = x.data_ptr<T>();
  const float* c = coeffs.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  // Work per image: 9 taps per channel and class at every output pixel.
  parallel_items(x.size(0), 9 * out_size * C, in_size, [&](int64_t begin, int64_t end,
                                                           float* scratch) {
    for (int64_t i = begin; i < end; ++i)
      ar_filter_image_cpu<T>(src + i * in_size, c, K, C, H, W, dst + i * out_size, scratch);
  });
}

at::Tensor ar_filter_cpu(const at::Tensor& x_in, const at::Tensor& coeffs_in) {
  check_ar_filter_args(x_in, coeffs_in);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor coeffs = coeffs_in.contiguous();
  at::Tensor out = at::empty({x.size(0), coeffs.size(0), x.size(2) - 2, x.size(3) - 2},
                             x.options().dtype(at::kFloat));
  dispatch_image_dtype(x, [&]<typename T>() { ar_filter_batch_cpu<T>(x, coeffs, out); });
  return out;
}

}  // namespace

POISONKIT_DEFINE_OPS(
    "ar_canvas(Tensor indices, int key, int channels, int height, int width) -> Tensor",
    "ar_generate(Tensor coeffs, Tensor labels, Tensor indices, int key, int height, int width, "
    "int crop, float? eps, float p) -> Tensor",
    "ar_poison(Tensor x, Tensor coeffs, Tensor labels, Tensor indices, int key, int crop, "
    "float eps, float p) -> Tensor",
    "ar_filter(Tensor x, Tensor coeffs) -> Tensor")

POISONKIT_IMPL_OPS(CPU, "ar_canvas", &ar_canvas_cpu, "ar_generate", &ar_generate_cpu,
                   "ar_poison", &ar_poison_cpu, "ar_filter", &ar_filter_cpu)

}  // namespace poisonkit
