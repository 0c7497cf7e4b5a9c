// CPU driver of the LSP ops: per group of same-class samples, each sample's F normal draws,
// the points z A + centre (one pass over A for the group) and their norms, then each image
// one row of patches at a time (the row's W perturbation values are expanded once and reused
// for the patch's rows, a vectorisable loop).
#include <cmath>

#include "lsp.h"

namespace poisonkit {

namespace {

// The G samples' points scaled to their perturbations' values: z [G, F] in scratch, the
// results to points [G, F].
void scaled_points(const float* centre, const float* mixing, const uint64_t* indices, int G,
                   const LspParams& p, float* z, float* points) {
  const int F = p.features();
  for (int g = 0; g < G; ++g)
    normal_run(philox_stream(p.key, indices[g], kLspSampleStream), 0, F,
               z + static_cast<int64_t>(g) * F);
  lsp_points(z, centre, mixing, F, G, points);
  for (int g = 0; g < G; ++g) {
    float* point = points + static_cast<int64_t>(g) * F;
    double sq = 0.0;
    for (int j = 0; j < F; ++j) sq += static_cast<double>(point[j]) * point[j];
    const float scale = lsp_scale(p, std::sqrt(sq));
    for (int j = 0; j < F; ++j) point[j] *= scale;
  }
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

size_t lsp_cpu_scratch_floats(const LspParams& p, int G) {
  return 2 * static_cast<size_t>(G) * p.features() + static_cast<size_t>(p.width);
}

void lsp_generate_samples_cpu(const float* centre, const float* mixing, const uint64_t* indices,
                              int G, const LspParams& p, float* const* outs, float* scratch) {
  const int64_t F = p.features();
  float* points = scratch + G * F;
  scaled_points(centre, mixing, indices, G, p, scratch, points);
  for (int g = 0; g < G; ++g)
    for (int c = 0; c < p.channels; ++c)
      for (int y = 0; y < p.height; ++y)
        expand_row(points + g * F, p, c, y,
                   outs[g] + c * p.plane() + static_cast<int64_t>(y) * p.width);
}

template <typename T>
void lsp_poison_samples_cpu(const T* const* images, T* const* outs, const float* centre,
                            const float* mixing, const uint64_t* indices, int G,
                            const LspParams& p, float* scratch) {
  const int64_t F = p.features();
  float* points = scratch + G * F;
  float* __restrict__ row = scratch + 2 * G * F;
  scaled_points(centre, mixing, indices, G, p, scratch, points);
  for (int g = 0; g < G; ++g) {
    for (int c = 0; c < p.channels; ++c) {
      for (int py = 0; py < p.height; py += p.patch) {
        expand_row(points + g * F, p, c, py, row);
        for (int y = py; y < py + p.patch; ++y) {
          const int64_t at = c * p.plane() + static_cast<int64_t>(y) * p.width;
          const T* __restrict__ src = images[g] + at;
          T* __restrict__ dst = outs[g] + at;
          for (int x = 0; x < p.width; ++x) lsp_store(src[x], row[x], dst + x);
        }
      }
    }
  }
}

template void lsp_poison_samples_cpu<uint8_t>(const uint8_t* const*, uint8_t* const*,
                                              const float*, const float*, const uint64_t*, int,
                                              const LspParams&, float*);
template void lsp_poison_samples_cpu<float>(const float* const*, float* const*, const float*,
                                            const float*, const uint64_t*, int,
                                            const LspParams&, float*);

}  // namespace poisonkit
