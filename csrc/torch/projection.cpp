// poisonkit::project_out: schema, argument validation and the CPU implementation.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "projection_args.h"

namespace poisonkit {

ProjectionParams projection_params(const at::Tensor& x, const at::Tensor& Q, bool clamp) {
  TORCH_CHECK(x.dim() == 4, "project_out: x must be an NCHW batch (4 dims), got ", x.dim(),
              " dims with shape ", x.sizes());
  TORCH_CHECK(x.scalar_type() == at::kByte || x.scalar_type() == at::kFloat,
              "project_out: x must be uint8 or float32, got ", x.scalar_type());
  TORCH_CHECK(x.size(0) > 0, "project_out: x is an empty batch (N = 0)");
  TORCH_CHECK(Q.dim() == 2, "project_out: Q must be a D x K matrix (2 dims), got shape ",
              Q.sizes());
  TORCH_CHECK(Q.scalar_type() == at::kFloat, "project_out: Q must be float32, got ",
              Q.scalar_type());
  TORCH_CHECK(Q.device() == x.device(), "project_out: Q must be on x's device (", x.device(),
              "), got ", Q.device());
  const int64_t D = x.size(1) * x.size(2) * x.size(3);
  TORCH_CHECK(D > 0, "project_out: x must have at least one channel and pixel, got shape ",
              x.sizes());
  TORCH_CHECK(Q.size(0) == D, "project_out: Q has ", Q.size(0), " rows but x's images have C*H*W = ",
              D, " values (shape ", x.sizes(), ")");
  TORCH_CHECK(Q.size(1) > 0 && Q.size(1) <= D, "project_out: Q must have between 1 and D = ", D,
              " columns, got ", Q.size(1));
  TORCH_CHECK(at::isfinite(Q).all().item<bool>(), "project_out: Q contains NaN or inf");
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
  const size_t scratch_floats = projection_cpu_scratch_floats(p);
  // Whole blocks of 8 images per task, about 64K pixels each.
  const int64_t grain = std::max<int64_t>(8, (65536 / p.dim + 7) / 8 * 8);
  const Tin* in = x.data_ptr<Tin>();
  Tout* dst = out.data_ptr<Tout>();
  const float* q = qt.data_ptr<float>();
  at::parallel_for(0, x.size(0), grain, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(scratch_floats);
    project_out_images_cpu<Tin, Tout>(in + begin * p.dim, dst + begin * p.dim, end - begin, q, p,
                                      scratch.data());
  });
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
