// CPU driver of the LSP ops: per sample, the F normal draws, the point z A + centre and its
// norm, then the image one row of patches at a time (the row's W perturbation values are
// expanded once and reused for the patch's rows, a vectorisable loop).
#include <cmath>

#include "lsp.h"

namespace poisonkit {

namespace {

// The sample's point scaled to the perturbation's values: scratch[0, F) holds z, the
// result goes to point [F].
void scaled_point(const float* centre, const float* mixing, uint64_t index, const LspParams& p,
                  float* z, float* point) {
  const int F = p.features();
  normal_run(philox_stream(p.key, index, kLspSampleStream), 0, F, z);
  lsp_point(z, centre, mixing, F, point);
  double sq = 0.0;
  for (int j = 0; j < F; ++j) sq += static_cast<double>(point[j]) * point[j];
  const float scale = lsp_scale(p, std::sqrt(sq));
  for (int j = 0; j < F; ++j) point[j] *= scale;
}

// Perturbation values of image row y of channel c: point features repeated patch times.
void expand_row(const float* point, const LspParams& p, int c, int y, float* row) {
  for (int x = 0; x < p.width; ++x) row[x] = point[lsp_feature_of(p, c, y, x)];
}

}  // namespace

void lsp_class_tables_cpu(uint64_t key, int num_classes, int features, float class_sep,
                          float* centres, float* mixing) {
  const int64_t F = features;
  for (int k = 0; k < num_classes; ++k) {
    const PhiloxStream s = philox_stream(key, static_cast<uint64_t>(k), kLspClassStream);
    for (int64_t f = 0; f < F; ++f)
      centres[k * F + f] = lsp_centre(lsp_class_word(s, static_cast<uint64_t>(f)), class_sep);
    float* a = mixing + k * F * F;
    for (int64_t d = 0; d < F * F; ++d)
      a[d] = lsp_mixing(lsp_class_word(s, static_cast<uint64_t>(F + d)));
  }
}

size_t lsp_cpu_scratch_floats(const LspParams& p) {
  return 2 * static_cast<size_t>(p.features()) + static_cast<size_t>(p.width);
}

void lsp_generate_sample_cpu(const float* centre, const float* mixing, uint64_t index,
                             const LspParams& p, float* out, float* scratch) {
  const int F = p.features();
  float* point = scratch + F;
  scaled_point(centre, mixing, index, p, scratch, point);
  for (int c = 0; c < p.channels; ++c)
    for (int y = 0; y < p.height; ++y)
      expand_row(point, p, c, y, out + c * p.plane() + static_cast<int64_t>(y) * p.width);
}

template <typename T>
void lsp_poison_sample_cpu(const T* image, T* out, const float* centre, const float* mixing,
                           uint64_t index, const LspParams& p, float* scratch) {
  const int F = p.features();
  float* point = scratch + F;
  float* __restrict__ row = scratch + 2 * F;
  scaled_point(centre, mixing, index, p, scratch, point);
  for (int c = 0; c < p.channels; ++c) {
    for (int py = 0; py < p.height; py += p.patch) {
      expand_row(point, p, c, py, row);
      for (int y = py; y < py + p.patch; ++y) {
        const int64_t at = c * p.plane() + static_cast<int64_t>(y) * p.width;
        const T* __restrict__ src = image + at;
        T* __restrict__ dst = out + at;
        for (int x = 0; x < p.width; ++x) lsp_store(src[x], row[x], dst + x);
      }
    }
  }
}

template void lsp_poison_sample_cpu<uint8_t>(const uint8_t*, uint8_t*, const float*,
                                             const float*, uint64_t, const LspParams&, float*);
template void lsp_poison_sample_cpu<float>(const float*, float*, const float*, const float*,
                                           uint64_t, const LspParams&, float*);

}  // namespace poisonkit
