// poisonkit::lowpass: schema, argument validation and the CPU implementation. The basis
// rows (and the disk mask) come from the caller, who builds and caches them per (size,
// keep, basis, shape): see poisonkit/defenses/lowpass.py.
#include <torch/library.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "checks.h"
#include "lowpass_args.h"
#include "parallel.h"

namespace poisonkit {

namespace {

void check_matrix(const char* name, const at::Tensor& m, const at::Tensor& x) {
  TORCH_CHECK(m.scalar_type() == at::kFloat, "lowpass: ", name, " must be float32, got ",
              m.scalar_type());
  check_same_device(m, x, "lowpass", name);
  TORCH_CHECK(m.dim() == 2, "lowpass: ", name, " must be a matrix (2 dims), got shape ",
              m.sizes());
  check_finite_param(m, "lowpass", name);
}

}  // namespace

LowpassParams lowpass_params(const at::Tensor& x, const at::Tensor& rows, const at::Tensor& cols,
                             const std::optional<at::Tensor>& mask, bool clamp) {
  check_image_batch(x, "lowpass");
  check_matrix("rows", rows, x);
  check_matrix("cols", cols, x);
  if (mask.has_value()) check_matrix("mask", *mask, x);
  LowpassParams p;
  p.channels = static_cast<int>(x.size(1));
  p.height = static_cast<int>(x.size(2));
  p.width = static_cast<int>(x.size(3));
  p.rank_h = static_cast<int>(rows.size(0));
  p.rank_w = static_cast<int>(cols.size(0));
  p.masked = mask.has_value();
  p.clamp = clamp;
  check_kernel_args(lowpass_params_error(p, rows.size(1), cols.size(1),
                                         p.masked ? mask->size(0) : 0,
                                         p.masked ? mask->size(1) : 0),
                    "lowpass");
  return p;
}

namespace {

// A large output (a batch of 64 float32 224x224 images is 38 MB, above glibc's largest mmap
// threshold) is a fresh mapping on every call that faults in 4 KB at a time, which cost as
// much as the filter itself here. Asking for transparent huge pages before the first write
// (as NumPy does for its large arrays) makes that 512x fewer faults; a no-op where the kernel
// does not offer them.
void advise_huge_pages(const at::Tensor& t) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t{1} << 21;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t last = (begin + t.nbytes()) & ~(kHuge - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#endif
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
  advise_huge_pages(out);
  // Work per image: its pixels read and written, times the products' passes (about 4 rank-r
  // products per pixel, r ~ H / 3 at keep 0.3: ~H flops per pixel, 8 per vector op).
  const int64_t work = static_cast<int64_t>(p.channels) * p.height * p.width *
                       (2 + (p.rank_h + p.rank_w) / 2);
  dispatch_image_dtype(x, [&]<typename T>() {
    const T* in = x.data_ptr<T>();
    T* dst = out.data_ptr<T>();
    parallel_items(x.size(0), work, plan.scratch_floats,
                   [&](int64_t begin, int64_t end, float* scratch) {
                     for (int64_t i = begin; i < end; ++i)
                       lowpass_image_cpu<T>(in, dst, i, plan, scratch);
                   });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(poisonkit, m) {
  m.def("lowpass(Tensor x, Tensor rows, Tensor cols, Tensor? mask, bool clamp) -> Tensor");
}

TORCH_LIBRARY_IMPL(poisonkit, CPU, m) { m.impl("lowpass", &lowpass_cpu); }

}  // namespace poisonkit
