// poisonkit::lowpass: schema, argument validation and the CPU implementation. The basis
// rows (and the disk mask) come from the caller, who builds and caches them per (size,
// keep, basis, shape): see poisonkit/defenses/lowpass.py.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "lowpass_args.h"

namespace poisonkit {

namespace {

// A reduction on the CPU tensor's few hundred values costs ~10 us through ATen, more than
// filtering a 32x32 image: scan CPU matrices directly.
bool all_finite(const at::Tensor& m) {
  if (!m.is_cpu()) return at::isfinite(m).all().item<bool>();
  const at::Tensor c = m.contiguous();
  const float* v = c.data_ptr<float>();
  for (int64_t i = 0; i < c.numel(); ++i)
    if (!std::isfinite(v[i])) return false;
  return true;
}

void check_matrix(const char* name, const at::Tensor& m, const at::Tensor& x, int64_t rows_max,
                  int64_t cols, const char* what) {
  TORCH_CHECK(m.scalar_type() == at::kFloat, "lowpass: ", name, " must be float32, got ",
              m.scalar_type());
  TORCH_CHECK(m.device() == x.device(), "lowpass: ", name, " must be on x's device (", x.device(),
              "), got ", m.device());
  TORCH_CHECK(m.dim() == 2 && m.size(0) >= 1 && m.size(0) <= rows_max && m.size(1) == cols,
              "lowpass: ", name, " must be ", what, " [r, ", cols, "] with 1 <= r <= ", rows_max,
              ", got shape ", m.sizes());
  TORCH_CHECK(all_finite(m), "lowpass: ", name, " contains NaN or inf");
}

}  // namespace

LowpassParams lowpass_params(const at::Tensor& x, const at::Tensor& rows, const at::Tensor& cols,
                             const std::optional<at::Tensor>& mask, bool clamp) {
  TORCH_CHECK(x.dim() == 4, "lowpass: x must be an NCHW batch (4 dims), got ", x.dim(),
              " dims with shape ", x.sizes());
  TORCH_CHECK(x.scalar_type() == at::kByte || x.scalar_type() == at::kFloat,
              "lowpass: x must be uint8 or float32, got ", x.scalar_type());
  TORCH_CHECK(x.size(0) > 0, "lowpass: x is an empty batch (N = 0)");
  TORCH_CHECK(x.size(1) > 0 && x.size(2) > 0 && x.size(3) > 0,
              "lowpass: x must have at least one channel and pixel, got shape ", x.sizes());
  check_matrix("rows", rows, x, x.size(2), x.size(2), "the kept basis rows along H");
  check_matrix("cols", cols, x, x.size(3), x.size(3), "the kept basis rows along W");
  if (mask.has_value()) {
    check_matrix("mask", *mask, x, rows.size(0), cols.size(0), "a coefficient mask");
    TORCH_CHECK(mask->size(0) == rows.size(0), "lowpass: mask must have one row per row of rows (",
                rows.size(0), "), got shape ", mask->sizes());
  }
  LowpassParams p;
  p.channels = static_cast<int>(x.size(1));
  p.height = static_cast<int>(x.size(2));
  p.width = static_cast<int>(x.size(3));
  p.rank_h = static_cast<int>(rows.size(0));
  p.rank_w = static_cast<int>(cols.size(0));
  p.masked = mask.has_value();
  p.clamp = clamp;
  return p;
}

namespace {

template <typename T>
void lowpass_batch_cpu(const at::Tensor& x, at::Tensor& out, const LowpassCpuPlan& plan) {
  const int64_t n = x.size(0);
  const int64_t image_size = static_cast<int64_t>(plan.p.channels) * plan.p.height * plan.p.width;
  const int64_t chunk = std::max<int64_t>(1, 16384 / image_size);  // images per work item
  const T* in = x.data_ptr<T>();
  T* dst = out.data_ptr<T>();
  // Threads take chunks from a shared counter rather than a fixed half each: at::parallel_for
  // splits statically, so one thread descheduled by a busy machine (or a DataLoader's other
  // workers) would stall the whole call; here the others take over its share.
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(at::get_num_threads(), (n + chunk - 1) / chunk);
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    std::vector<float> scratch(plan.scratch_floats);
    for (int64_t begin; (begin = next.fetch_add(chunk)) < n;) {
      const int64_t end = std::min(n, begin + chunk);
      for (int64_t i = begin; i < end; ++i) lowpass_image_cpu<T>(in, dst, i, plan, scratch.data());
    }
  });
}

at::Tensor lowpass_cpu(const at::Tensor& x_in, const at::Tensor& rows_in, const at::Tensor& cols_in,
                       const std::optional<at::Tensor>& mask_in, bool clamp) {
  const LowpassParams p = lowpass_params(x_in, rows_in, cols_in, mask_in, clamp);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor rows = rows_in.contiguous();
  const at::Tensor cols = cols_in.contiguous();
  const at::Tensor mask = mask_in.has_value() ? mask_in->contiguous() : at::Tensor();
  const LowpassCpuPlan plan = lowpass_cpu_plan(p, rows.data_ptr<float>(), cols.data_ptr<float>(),
                                               mask.defined() ? mask.data_ptr<float>() : nullptr);
  at::Tensor out = at::empty(x.sizes(), x.options());
  if (x.scalar_type() == at::kByte) {
    lowpass_batch_cpu<uint8_t>(x, out, plan);
  } else {
    lowpass_batch_cpu<float>(x, out, plan);
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(poisonkit, m) {
  m.def("lowpass(Tensor x, Tensor rows, Tensor cols, Tensor? mask, bool clamp) -> Tensor");
}

TORCH_LIBRARY_IMPL(poisonkit, CPU, m) { m.impl("lowpass", &lowpass_cpu); }

}  // namespace poisonkit
