// poisonkit::filter2d: schema, argument validation and the CPU implementation.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "filter2d_args.h"

namespace poisonkit {

namespace {

Padding parse_padding(c10::string_view s) {
  if (s == "zeros") return Padding::Zeros;
  if (s == "reflect") return Padding::Reflect;
  if (s == "replicate") return Padding::Replicate;
  if (s == "valid") return Padding::Valid;
  TORCH_CHECK(false, "filter2d: padding must be 'zeros', 'reflect', 'replicate' or 'valid', got '",
              std::string(s), "'");
}

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
  TORCH_CHECK(x.dim() == 4, "filter2d: x must be an NCHW batch (4 dims), got ", x.dim(),
              " dims with shape ", x.sizes());
  TORCH_CHECK(x.scalar_type() == at::kByte || x.scalar_type() == at::kFloat,
              "filter2d: x must be uint8 or float32, got ", x.scalar_type());
  TORCH_CHECK(x.size(0) > 0, "filter2d: x is an empty batch (N = 0)");
  TORCH_CHECK(x.size(1) > 0 && x.size(2) > 0 && x.size(3) > 0,
              "filter2d: x must have at least one channel and pixel, got shape ", x.sizes());
  TORCH_CHECK(weights.scalar_type() == at::kFloat, "filter2d: weights must be float32, got ",
              weights.scalar_type());
  TORCH_CHECK(weights.device() == x.device(), "filter2d: weights must be on x's device (",
              x.device(), "), got ", weights.device());
  TORCH_CHECK(weights.dim() == 3 || weights.dim() == 4,
              "filter2d: weights must be [N, kh, kw] or [N, C, kh, kw], got shape ",
              weights.sizes());
  TORCH_CHECK(weights.size(0) == x.size(0), "filter2d: weights hold ", weights.size(0),
              " kernels but x holds ", x.size(0), " images (one kernel per image)");
  const int64_t kh = weights.size(-2), kw = weights.size(-1);
  TORCH_CHECK(kh % 2 == 1 && kw % 2 == 1 && kh <= kFilter2dMaxKernel && kw <= kFilter2dMaxKernel,
              "filter2d: kernel size must be odd and at most ", kFilter2dMaxKernel, ", got ", kh,
              "x", kw);
  if (weights.dim() == 4) {
    TORCH_CHECK(weights.size(1) == x.size(1) || weights.size(1) == 1,
                "filter2d: weights [N, C, kh, kw] must have C = 1 or C = x's channels (",
                x.size(1), "), got ", weights.size(1));
  }
  TORCH_CHECK(at::isfinite(weights).all().item<bool>(),
              "filter2d: weights contain NaN or inf");

  Filter2dParams p;
  p.channels = static_cast<int>(x.size(1));
  p.height = static_cast<int>(x.size(2));
  p.width = static_cast<int>(x.size(3));
  p.kernel_h = static_cast<int>(kh);
  p.kernel_w = static_cast<int>(kw);
  p.weight_channels = weights.dim() == 4 ? static_cast<int>(weights.size(1)) : 1;
  p.padding = parse_padding(padding);
  p.normalize_max = parse_normalize(normalize);
  p.rounding = parse_rounding(rounding);
  p.clamp = clamp;
  if (p.padding == Padding::Valid) {
    TORCH_CHECK(p.height >= kh && p.width >= kw, "filter2d: padding='valid' needs images of at least ",
                kh, "x", kw, ", got ", p.height, "x", p.width);
  }
  if (p.padding == Padding::Reflect) {
    TORCH_CHECK(p.height > kh / 2 && p.width > kw / 2, "filter2d: padding='reflect' needs images ",
                "larger than half the kernel (", kh / 2, "x", kw / 2, "), got ", p.height, "x",
                p.width);
  }
  return p;
}

namespace {

template <typename T>
void filter2d_batch_cpu(const at::Tensor& x, const at::Tensor& weights, at::Tensor& out,
                        const Filter2dParams& p) {
  const size_t scratch_floats = filter2d_cpu_scratch_floats(p);
  const int64_t image_size = static_cast<int64_t>(p.channels) * p.height * p.width;
  const int64_t grain = std::max<int64_t>(1, 32768 / image_size);
  const T* in = x.data_ptr<T>();
  T* dst = out.data_ptr<T>();
  const float* w = weights.data_ptr<float>();
  at::parallel_for(0, x.size(0), grain, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(scratch_floats);
    for (int64_t i = begin; i < end; ++i) filter2d_image_cpu<T>(in, dst, w, i, p, scratch.data());
  });
}

at::Tensor filter2d_cpu(const at::Tensor& x_in, const at::Tensor& weights_in,
                        c10::string_view padding, c10::string_view normalize,
                        c10::string_view rounding, bool clamp) {
  const Filter2dParams p = filter2d_params(x_in, weights_in, padding, normalize, rounding, clamp);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor weights = weights_in.contiguous();
  at::Tensor out = at::empty({x.size(0), p.channels, p.out_h(), p.out_w()}, x.options());
  if (x.scalar_type() == at::kByte) {
    filter2d_batch_cpu<uint8_t>(x, weights, out, p);
  } else {
    filter2d_batch_cpu<float>(x, weights, out, p);
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(poisonkit, m) {
  m.def("filter2d(Tensor x, Tensor weights, str padding, str normalize, str rounding, "
        "bool clamp) -> Tensor");
}

TORCH_LIBRARY_IMPL(poisonkit, CPU, m) { m.impl("filter2d", &filter2d_cpu); }

}  // namespace poisonkit
