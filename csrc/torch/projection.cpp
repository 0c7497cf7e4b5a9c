// poisonkit::project_out: schema, argument validation and the CPU implementation.
#include <torch/library.h>

#include "checks.h"
#include "parallel.h"
#include "projection_args.h"

namespace poisonkit {

ProjectionParams projection_params(const at::Tensor& x, const at::Tensor& Q, bool clamp) {
  check_image_batch(x, "project_out");
  TORCH_CHECK(Q.dim() == 2, "project_out: Q must be a D x K matrix (2 dims), got shape ",
              Q.sizes());
  TORCH_CHECK(Q.scalar_type() == at::kFloat, "project_out: Q must be float32, got ",
              Q.scalar_type());
  check_same_device(Q, x, "project_out", "Q");
  const int64_t D = x.size(1) * x.size(2) * x.size(3);
  check_kernel_args(projection_shape_error(D, Q.size(0), Q.size(1), x.is_cuda()), "project_out");
  check_finite_param(Q, "project_out", "Q");
  ProjectionParams p;
  p.dim = D;
  p.rank = static_cast<int>(Q.size(1));
  p.clamp = clamp;
  return p;
}

at::Tensor projection_qt(const at::Tensor& Q) { return Q.t().contiguous(); }

at::ScalarType projection_out_dtype(const at::Tensor& x, bool clamp) {
  return clamp ? x.scalar_type() : at::kFloat;
}

namespace {

template <typename Tin, typename Tout>
void project_out_batch_cpu(const at::Tensor& x, const at::Tensor& qt, at::Tensor& out,
                           const ProjectionParams& p) {
  const Tin* in = x.data_ptr<Tin>();
  Tout* dst = out.data_ptr<Tout>();
  const float* q = qt.data_ptr<float>();
  // Work per image: D values read twice and written once, plus 2 K multiply-adds per value
  // (vectorised by 8). Chunks are whole blocks of 8 images (projection_cpu.cpp).
  const int64_t work = p.dim * (3 + p.rank / 4);
  parallel_items(x.size(0), work, projection_cpu_scratch_floats(p),
                 [&](int64_t begin, int64_t end, float* scratch) {
                   project_out_images_cpu<Tin, Tout>(in + begin * p.dim, dst + begin * p.dim,
                                                     end - begin, q, p, scratch);
                 }, 8);
}

at::Tensor project_out_cpu(const at::Tensor& x_in, const at::Tensor& Q, bool clamp) {
  const ProjectionParams p = projection_params(x_in, Q, clamp);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor qt = projection_qt(Q);
  at::Tensor out = at::empty(x.sizes(), x.options().dtype(projection_out_dtype(x, clamp)));
  if (x.scalar_type() == at::kFloat) {
    project_out_batch_cpu<float, float>(x, qt, out, p);
  } else if (clamp) {
    project_out_batch_cpu<uint8_t, uint8_t>(x, qt, out, p);
  } else {
    project_out_batch_cpu<uint8_t, float>(x, qt, out, p);
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(poisonkit, m) {
  m.def("project_out(Tensor x, Tensor Q, bool clamp) -> Tensor");
}

TORCH_LIBRARY_IMPL(poisonkit, CPU, m) { m.impl("project_out", &project_out_cpu); }

}  // namespace poisonkit
