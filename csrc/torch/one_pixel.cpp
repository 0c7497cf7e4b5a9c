// poisonkit one-pixel shortcut (OPS) ops: schemas, argument validation, CPU implementations.
//   one_pixel_moments: per class, channel and pixel, the sum and sum of squares of the
//     values, and the class counts (mergeable over batches)
//   one_pixel_search: the scores of every (position, colour) and the greedy per-class
//     choice, from the moments (small; CPU)
//   one_pixel_apply: sets each image's pixel of its class to the class's colour
#include <cmath>
#include <tuple>

#include "one_pixel_args.h"
#include "checks.h"
#include "parallel.h"
#include "registration.h"

namespace poisonkit {

namespace {

// Elements per range of the moment pass (see there).
constexpr int64_t kOnePixelMomentsBlock = 256;

// Images up to this size are copied by one_pixel_apply_cpu itself (see there).
constexpr int64_t kOnePixelChunkedCopyBytes = 64 << 10;

void check_channels(const at::Tensor& x, const char* op) {
  check_image_batch(x, op);
  TORCH_CHECK(x.size(1) >= 1 && x.size(1) <= kOnePixelMaxChannels, op,
              ": x must have 1 to ", kOnePixelMaxChannels, " channels, got ", x.size(1));
}

}  // namespace

void check_one_pixel_moments_args(const at::Tensor& x, const at::Tensor& labels,
                                  int64_t num_classes) {
  check_channels(x, "one_pixel_moments");
  TORCH_CHECK(num_classes >= 1, "one_pixel_moments: num_classes must be >= 1, got ",
              num_classes);
  check_labels(labels, x.size(0), num_classes, x.device(), "one_pixel_moments");
}

void check_one_pixel_apply_args(const at::Tensor& x, const at::Tensor& labels,
                                const at::Tensor& positions, const at::Tensor& colours) {
  const char* op = "one_pixel_apply";
  check_channels(x, op);
  TORCH_CHECK(positions.scalar_type() == at::kLong && positions.dim() == 1 &&
                  positions.size(0) >= 1,
              op, ": positions must be int64 [K] with K >= 1, got ", positions.scalar_type(),
              " of shape ", positions.sizes());
  const int64_t K = positions.size(0);
  TORCH_CHECK(colours.scalar_type() == at::kFloat && colours.dim() == 2 &&
                  colours.size(0) == K && colours.size(1) == x.size(1),
              op, ": colours must be float32 [K, C] = [", K, ", ", x.size(1), "], got ",
              colours.scalar_type(), " of shape ", colours.sizes());
  TORCH_CHECK(positions.device() == x.device() && colours.device() == x.device(), op,
              ": positions and colours must be on x's device (", x.device(), ")");
  check_labels(labels, x.size(0), K, x.device(), op);
  const auto [lo, hi] = min_max(positions);
  const int64_t plane = x.size(2) * x.size(3);
  TORCH_CHECK(lo >= 0 && hi < plane, op, ": positions must be pixel numbers in [0, H*W = ",
              plane, "), got values in [", lo, ", ", hi, "]");
  TORCH_CHECK(float_all_within(colours, 0.0f, 1.0f), op,
              ": colours must be finite values in [0, 1]");
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> one_pixel_moment_outputs(const at::Tensor& x,
                                                                        const at::Tensor& labels,
                                                                        int64_t num_classes) {
  const auto opts = x.options().dtype(at::kDouble);
  return {at::zeros({num_classes, x.size(1), x.size(2), x.size(3)}, opts),
          at::zeros({num_classes, x.size(1), x.size(2), x.size(3)}, opts),
          at::bincount(labels, {}, num_classes)};
}

namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> one_pixel_moments_cpu_impl(
    const at::Tensor& x_in, const at::Tensor& labels_in, int64_t num_classes) {
  check_one_pixel_moments_args(x_in, labels_in, num_classes);
  const at::Tensor x = x_in.contiguous(), labels = labels_in.contiguous();
  auto [sums, squares, counts] = one_pixel_moment_outputs(x, labels, num_classes);
  const int64_t n = x.size(0), size = x.size(1) * x.size(2) * x.size(3);
  const int64_t* lab = labels.data_ptr<int64_t>();
  double* s = sums.data_ptr<double>();
  double* q = squares.data_ptr<double>();
  // Threads take disjoint element ranges of every image: no shared accumulators. Ranges are
  // whole blocks of kOnePixelMomentsBlock elements: a range of a few elements would re-read
  // each cache line of every image once per range (measured 3.7x slower on the 10k set) and
  // leave nothing to vectorise.
  dispatch_image_dtype(x, [&]<typename T>() {
    parallel_items(size, 3 * n, 0, [&](int64_t begin, int64_t end, float*) {  // 1 read, 2 sums
      one_pixel_moments_cpu<T>(x.data_ptr<T>(), lab, n, size, begin, end, s, q);
    }, kOnePixelMomentsBlock);
  });
  return {sums, squares, counts};
}

std::tuple<at::Tensor, at::Tensor> one_pixel_search_cpu(const at::Tensor& sums_in,
                                                        const at::Tensor& squares_in,
                                                        const at::Tensor& counts_in,
                                                        double unit) {
  const char* op = "one_pixel_search";
  TORCH_CHECK(sums_in.scalar_type() == at::kDouble && squares_in.scalar_type() == at::kDouble,
              op, ": sums and squares must be float64, got ", sums_in.scalar_type(), " and ",
              squares_in.scalar_type());
  TORCH_CHECK(sums_in.dim() == 4 && squares_in.sizes() == sums_in.sizes(), op,
              ": sums and squares must be [K, C, H, W] of one shape, got ", sums_in.sizes(),
              " and ", squares_in.sizes());
  const int64_t K = sums_in.size(0), C = sums_in.size(1), H = sums_in.size(2),
                W = sums_in.size(3);
  TORCH_CHECK(K >= 1 && C >= 1 && C <= kOnePixelMaxChannels && H >= 1, op,
              ": sums must have K >= 1 classes and 1 to ", kOnePixelMaxChannels,
              " channels, got shape ", sums_in.sizes());
  TORCH_CHECK(H == W, op, ": the search needs square images (the reference numbers pixel p as (p "
              "// H, p % H)), got ", H, "x", W);
  TORCH_CHECK(counts_in.scalar_type() == at::kLong && counts_in.dim() == 1 &&
                  counts_in.size(0) == K,
              op, ": counts must be int64 [K = ", K, "], got ", counts_in.scalar_type(),
              " of shape ", counts_in.sizes());
  TORCH_CHECK(std::isfinite(unit) && unit > 0.0, op, ": unit must be positive, got ", unit);
  const at::Tensor sums = sums_in.cpu().contiguous(), squares = squares_in.cpu().contiguous();
  const at::Tensor counts = counts_in.cpu().contiguous();
  const int64_t* cnt = counts.data_ptr<int64_t>();
  for (int64_t k = 0; k < K; ++k)
    TORCH_CHECK(cnt[k] > 0, op, ": class ", k, " has no images (counts[", k, "] = ", cnt[k],
                "); every class needs at least one");
  const int64_t plane = H * W, colours = int64_t{1} << C;
  at::Tensor scores = at::empty({K, plane, colours}, sums.options());
  at::Tensor choice = at::empty({K}, counts.options());
  one_pixel_scores_cpu(sums.data_ptr<double>(), squares.data_ptr<double>(), cnt,
                       static_cast<int>(K), static_cast<int>(C), plane, unit,
                       scores.data_ptr<double>());
  one_pixel_select_cpu(scores.data_ptr<double>(), static_cast<int>(K), plane * colours,
                       choice.data_ptr<int64_t>());
  return {scores, choice};
}

at::Tensor one_pixel_apply_cpu(const at::Tensor& x_in, const at::Tensor& labels_in,
                               const at::Tensor& positions_in, const at::Tensor& colours_in) {
  check_one_pixel_apply_args(x_in, labels_in, positions_in, colours_in);
  const at::Tensor labels = labels_in.contiguous();
  const at::Tensor positions = positions_in.contiguous(), colours = colours_in.contiguous();
  const int C = static_cast<int>(x_in.size(1));
  const int64_t n = x_in.size(0), plane = x_in.size(2) * x_in.size(3), size = C * plane;
  const int64_t* lab = labels.data_ptr<int64_t>();
  const int64_t* pos = positions.data_ptr<int64_t>();
  const float* col = colours.data_ptr<float>();
  // The op is a copy. Small images (CIFAR's 3 KB) are copied here in chunks, each image's
  // pixel set while it is in L1; large ones by ATen's copy, then the n pixels set: measured
  // here, the first is 1.3-1.5x ATen's clone at 32x32, the second ~1.25x faster at 224x224.
  at::Tensor out;
  if (size * static_cast<int64_t>(x_in.element_size()) > kOnePixelChunkedCopyBytes) {
    out = x_in.clone(at::MemoryFormat::Contiguous);
    dispatch_image_dtype(out, [&]<typename T>() {
      T* data = out.data_ptr<T>();
      for (int64_t i = 0; i < n; ++i)
        one_pixel_set_sample_cpu<T>(data + i * size, C, plane, pos[lab[i]], col + lab[i] * C);
    });
    return out;
  }
  const at::Tensor x = x_in.contiguous();
  out = at::empty_like(x);
  dispatch_image_dtype(x, [&]<typename T>() {
    const T* src = x.data_ptr<T>();
    T* dst = out.data_ptr<T>();
    const int64_t work = 2 * size * static_cast<int64_t>(sizeof(T)) / kCopyBytesPerUnit;
    parallel_items(n, work, 0, [&](int64_t begin, int64_t end, float*) {
      for (int64_t i = begin; i < end; ++i)
        one_pixel_apply_sample_cpu<T>(src + i * size, dst + i * size, C, plane, pos[lab[i]],
                                      col + lab[i] * C);
    });
  });
  return out;
}

}  // namespace

POISONKIT_DEFINE_OPS(
    "one_pixel_moments(Tensor x, Tensor labels, int num_classes) -> (Tensor, Tensor, Tensor)",
    "one_pixel_search(Tensor sums, Tensor squares, Tensor counts, float unit) -> (Tensor, Tensor)",
    "one_pixel_apply(Tensor x, Tensor labels, Tensor positions, Tensor colours) -> Tensor")

POISONKIT_IMPL_OPS(CPU, "one_pixel_moments", &one_pixel_moments_cpu_impl, "one_pixel_search",
                   &one_pixel_search_cpu, "one_pixel_apply", &one_pixel_apply_cpu)

}  // namespace poisonkit
