// poisonkit::filter2d: schema, argument validation and the CPU implementation.

#include <string>
#include <string_view>

#include "checks.h"
#include "filter2d_args.h"
#include "parallel.h"
#include "registration.h"

namespace poisonkit {

namespace {

Rounding parse_rounding(c10::string_view s) {
  if (s == "nearest") return Rounding::Nearest;
  if (s == "truncate") return Rounding::Truncate;
  TORCH_CHECK(false, "filter2d: rounding must be 'nearest' or 'truncate', got '", std::string(s),
              "'");
}

bool parse_normalize(c10::string_view s) {
  if (s == "none") return false;
  if (s == "max") return true;
  TORCH_CHECK(false, "filter2d: normalize must be 'none' or 'max', got '", std::string(s), "'");
}

}  // namespace

Filter2dParams filter2d_params(const at::Tensor& x, const at::Tensor& weights,
                               c10::string_view padding, c10::string_view normalize,
                               c10::string_view rounding, bool clamp) {
  check_image_batch(x, "filter2d");
  TORCH_CHECK(weights.scalar_type() == at::kFloat, "filter2d: weights must be float32, got ",
              weights.scalar_type());
  check_same_device(weights, x, "filter2d", "weights");
  TORCH_CHECK(weights.dim() == 3 || weights.dim() == 4,
              "filter2d: weights must be [N, kh, kw] or [N, C, kh, kw], got shape ",
              weights.sizes());
  TORCH_CHECK(weights.size(0) == x.size(0), "filter2d: weights hold ", weights.size(0),
              " kernels but x holds ", x.size(0), " images (one kernel per image)");
  const int64_t kh = weights.size(-2), kw = weights.size(-1);
  check_kernel_args(filter2d_kernel_size_error(kh, kw), "filter2d");
  if (weights.dim() == 4) {
    TORCH_CHECK(weights.size(1) == x.size(1) || weights.size(1) == 1,
                "filter2d: weights [N, C, kh, kw] must have C = 1 or C = x's channels (",
                x.size(1), "), got ", weights.size(1));
  }
  check_finite_param(weights, "filter2d", "weights");

  Filter2dParams p;
  p.channels = static_cast<int>(x.size(1));
  p.height = static_cast<int>(x.size(2));
  p.width = static_cast<int>(x.size(3));
  p.kernel_h = static_cast<int>(kh);
  p.kernel_w = static_cast<int>(kw);
  p.weight_channels = weights.dim() == 4 ? static_cast<int>(weights.size(1)) : 1;
  TORCH_CHECK(parse_padding(std::string_view(padding.data(), padding.size()), &p.padding),
              "filter2d: padding must be ", kFilter2dPaddings, ", got '", std::string(padding),
              "'");
  p.normalize_max = parse_normalize(normalize);
  p.rounding = parse_rounding(rounding);
  p.clamp = clamp;
  check_kernel_args(filter2d_padding_error(p), "filter2d");
  return p;
}

namespace {

at::Tensor filter2d_cpu(const at::Tensor& x_in, const at::Tensor& weights_in,
                        c10::string_view padding, c10::string_view normalize,
                        c10::string_view rounding, bool clamp) {
  const Filter2dParams p = filter2d_params(x_in, weights_in, padding, normalize, rounding, clamp);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor weights = weights_in.contiguous();
  at::Tensor out = at::empty({x.size(0), p.channels, p.out_h(), p.out_w()}, x.options());
  // Work per image: its pixels read and written, times the taps per output pixel / 4 (the
  // filter loop vectorises the taps' products).
  const int64_t work = static_cast<int64_t>(p.channels) * p.height * p.width *
                       (2 + p.taps() / 4);
  const float* w = weights.data_ptr<float>();
  dispatch_image_dtype(x, [&]<typename T>() {
    const T* in = x.data_ptr<T>();
    T* dst = out.data_ptr<T>();
    parallel_items(x.size(0), work, filter2d_cpu_scratch_floats(p),
                   [&](int64_t begin, int64_t end, float* scratch) {
                     for (int64_t i = begin; i < end; ++i)
                       filter2d_image_cpu<T>(in, dst, w, i, p, scratch);
                   });
  });
  return out;
}

}  // namespace

POISONKIT_DEFINE_OPS("filter2d(Tensor x, Tensor weights, str padding, str normalize, "
                     "str rounding, bool clamp) -> Tensor")
POISONKIT_IMPL_OPS(CPU, "filter2d", &filter2d_cpu)

}  // namespace poisonkit
