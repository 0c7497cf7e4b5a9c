// LSP: linearly separable synthetic perturbations (Yu et al., KDD 2022; DESIGN 3.6).
//
// The reference draws points with sklearn's make_classification (n_features = n_informative
// = F = (H/patch)(W/patch)C, class_sep 10, one cluster per class): class k has a centre on a
// vertex of the hypercube {-sep, +sep}^F and a mixing matrix A_k with entries uniform in
// [-1, 1]; a sample of class k is z A_k + centre_k with z ~ N(0, I_F). The point is reshaped
// to [H/patch, W/patch, C], each value repeated over a patch x patch block, scaled to an L2
// norm of eps * sqrt(C H W), added to the [0,1] image and clipped; uint8 is stored by
// truncation (numpy astype(uint8), as the reference).
//
// Draws (Philox, philox.h): class k's centre bit f is the top bit of uniform word f, and
// A_k[i][j] = 2 u - 1 with u = unit_open(word F + i F + j), words of (key, k,
// kLspClassStream); a sample's z_f is normal draw f of (key, sample index,
// kLspSampleStream). So a poisoned image is a pure function of (key, index, class).
// make_classification's sample and feature shuffles only relabel draws from the same
// distribution and are not reproduced.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "common.h"
#include "philox.h"

namespace poisonkit {

constexpr uint32_t kLspClassStream = 0x4C530001u;   // 'LS', class centre and mixing words
constexpr uint32_t kLspSampleStream = 0x4C530002u;  // 'LS', a sample's normal draws

struct LspParams {
  int channels = 0;
  int height = 0;
  int width = 0;
  int patch = 8;
  float eps = 6.0f / 255.0f;  // L2 norm = eps * sqrt(C H W) (the reference's comput_l2norm_lim)
  uint64_t key = 0;

  PK_HD int patches_w() const { return width / patch; }
  PK_HD int features() const { return (height / patch) * patches_w() * channels; }
  PK_HD int64_t plane() const { return static_cast<int64_t>(height) * width; }
  PK_HD double l2() const {
    return static_cast<double>(eps) * sqrt(static_cast<double>(channels) * plane());
  }
};

// Uniform word d of class k's stream.
PK_HD uint32_t lsp_class_word(const PhiloxStream& s, uint64_t d) {
  return philox_block(s, static_cast<uint32_t>(d >> 2)).v[d & 3];
}

PK_HD float lsp_centre(uint32_t word, float class_sep) {
  return (word >> 31) ? class_sep : -class_sep;
}

PK_HD float lsp_mixing(uint32_t word) { return 2.0f * unit_open(word) - 1.0f; }

// Feature j of the point: z A + centre (A row-major [F, F], z a row vector, as np.dot).
PK_HD float lsp_feature(const float* z, const float* centre, const float* mixing, int F, int j) {
  float acc = centre[j];
  for (int i = 0; i < F; ++i) acc += z[i] * mixing[static_cast<int64_t>(i) * F + j];
  return acc;
}

// The points z_g A + centre of G samples of one class into points [G, F] (z [G, F]),
// accumulated row by row of A in blocks of columns: contiguous reads of A, each read once
// for all G points (the matrix is F^2 floats, 22 MB at 224x224), and for each (g, j) the
// same sums in the same order as lsp_feature.
PK_HD void lsp_points(const float* z, const float* centre, const float* mixing, int F, int G,
                      float* points) {
  constexpr int kBlock = 256;  // columns per pass: G x 256 partial sums stay in L1
  for (int j0 = 0; j0 < F; j0 += kBlock) {
    const int j1 = j0 + kBlock < F ? j0 + kBlock : F;
    for (int g = 0; g < G; ++g)
      for (int j = j0; j < j1; ++j) points[static_cast<int64_t>(g) * F + j] = centre[j];
    for (int i = 0; i < F; ++i) {
      const float* row = mixing + static_cast<int64_t>(i) * F;
      for (int g = 0; g < G; ++g) {
        const float zi = z[static_cast<int64_t>(g) * F + i];
        float* point = points + static_cast<int64_t>(g) * F;
        for (int j = j0; j < j1; ++j) point[j] += zi * row[j];
      }
    }
  }
}

// Factor from the point's norm to the upsampled perturbation's L2 norm: every feature is
// repeated patch^2 times. A zero point stays zero.
PK_HD float lsp_scale(const LspParams& p, double point_norm) {
  if (!(point_norm > 0.0)) return 0.0f;
  return static_cast<float>(p.l2() / (p.patch * point_norm));
}

// Feature read by pixel (c, y, x): the reshape [H/patch, W/patch, C] of the point.
PK_HD int lsp_feature_of(const LspParams& p, int c, int y, int x) {
  return ((y / p.patch) * p.patches_w() + x / p.patch) * p.channels + c;
}

// The poisoned value: image plus perturbation in [0,1] units, clipped; uint8 truncates.
PK_HD void lsp_store(uint8_t v, float delta, uint8_t* out) {
  float s = static_cast<float>(v) + 255.0f * delta;
  s = s > 0.0f ? s : 0.0f;
  s = s < 255.0f ? s : 255.0f;
  *out = static_cast<uint8_t>(static_cast<int>(s));
}
PK_HD void lsp_store(float v, float delta, float* out) { *out = clamp_unit(v + delta); }

// ---- CPU driver (lsp_cpu.cpp): G samples of one class per call (G = 1: one sample).
constexpr int kLspCpuGroup = 8;  // samples sharing one pass over their class's mixing matrix

// Class tables: centres [K, F] and mixing [K, F, F].
void lsp_class_tables_cpu(uint64_t key, int num_classes, int features, float class_sep,
                          float* centres, float* mixing);

// scratch holds lsp_cpu_scratch_floats(p, G) floats.
size_t lsp_cpu_scratch_floats(const LspParams& p, int G = 1);

// The perturbations of G samples of one class (dataset indices[g]) into outs[g] [C, H, W]
// (float, [0,1] units).
void lsp_generate_samples_cpu(const float* centre, const float* mixing, const uint64_t* indices,
                              int G, const LspParams& p, float* const* outs, float* scratch);

// Poisons G images [C, H, W] of one class.
template <typename T>
void lsp_poison_samples_cpu(const T* const* images, T* const* outs, const float* centre,
                            const float* mixing, const uint64_t* indices, int G,
                            const LspParams& p, float* scratch);

// One image (DALI's per-sample call).
template <typename T>
void lsp_poison_sample_cpu(const T* image, T* out, const float* centre, const float* mixing,
                           uint64_t index, const LspParams& p, float* scratch) {
  lsp_poison_samples_cpu<T>(&image, &out, centre, mixing, &index, 1, p, scratch);
}

#if defined(POISONKIT_WITH_CUDA)
// ---- CUDA driver (lsp_cuda.cu): one block per sample. centres [K, F], mixing [K, F, F],
// labels and indices [N] on the device.
}  // namespace poisonkit
#include <cuda_runtime_api.h>
namespace poisonkit {
cudaError_t lsp_generate_cuda(const float* centres, const float* mixing, const int64_t* labels,
                              const int64_t* indices, int64_t n, const LspParams& p, float* out,
                              cudaStream_t stream);

template <typename T>
cudaError_t lsp_poison_cuda(const T* x, T* out, const float* centres, const float* mixing,
                            const int64_t* labels, const int64_t* indices, int64_t n,
                            const LspParams& p, cudaStream_t stream);
#endif

}  // namespace poisonkit
