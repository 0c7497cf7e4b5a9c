// Random sharpening kernels (RSK) of the RSK+FF defense (Kim & Sandoval-Segura, 2024):
// K = [[0, -n1, 0], [-n2, c, -n3], [0, -n4, 0]] with c ~ N(center, std) and
// n1..n4 ~ N((c - 1) / 4, std) independently (std = 0: the fixed SSK kernel).
//
// The draws are Philox normals (philox.h), a pure function of (seed, sample index, epoch):
// draws 8 * epoch + 0..4 of the stream (key = seed, index = the sample's index, stream
// kRskStream), so a sample's kernel is the same in the torch op rsk_kernels and the DALI
// operator sharpen, whatever the batch, order, thread or backend.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

#include "common.h"
#include "philox.h"

namespace poisonkit {

constexpr uint32_t kRskStream = 0x534B0001u;  // 'SK', RSK draws
constexpr int kRskDrawsPerEpoch = 8;          // 5 used: c, n1..n4
// Philox block counters (a block per 4 draws) are 32 bits: epochs below 2^31.
constexpr int64_t kRskMaxEpoch = (int64_t{1} << 32) * 4 / kRskDrawsPerEpoch;
constexpr int kRskTaps = 9;

// The kernel of one sample, row-major into k[9]. The sums are in double, then rounded once.
PK_HD void rsk_kernel(uint64_t seed, uint64_t index, uint64_t epoch, float center, float stddev,
                      float* k) {
  float z[5] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  if (stddev > 0.0f) {
    normal_run(philox_stream(seed, index, kRskStream), epoch * kRskDrawsPerEpoch, 5, z);
  }
  const double c = center + static_cast<double>(stddev) * z[0];
  for (int t = 0; t < kRskTaps; ++t) k[t] = 0.0f;
  k[4] = static_cast<float>(c);
  const int taps[4] = {1, 3, 5, 7};
  for (int j = 0; j < 4; ++j)
    k[taps[j]] = static_cast<float>(-((c - 1.0) / 4.0 + static_cast<double>(stddev) * z[j + 1]));
}

// ---- Validation shared by the torch op and the DALI operator (empty when fine).
inline std::string rsk_params_error(double center, double stddev) {
  if (!std::isfinite(center)) return "center must be a finite number, got " + std::to_string(center);
  if (!std::isfinite(stddev) || stddev < 0.0)
    return "std must be a non-negative finite number, got " + std::to_string(stddev);
  return "";
}

inline std::string rsk_epoch_error(int64_t epoch) {
  if (epoch >= 0 && epoch < kRskMaxEpoch) return "";
  return "epoch must be in [0, 2^31), got " + std::to_string(epoch);
}

// ---- Drivers (rsk_cpu.cpp, rsk_cuda.cu): the kernels of n samples into out [n, 9].
void rsk_kernels_cpu(uint64_t seed, const int64_t* indices, int64_t n, uint64_t epoch,
                     float center, float stddev, float* out);

#if defined(POISONKIT_WITH_CUDA)
}  // namespace poisonkit
#include <cuda_runtime_api.h>
namespace poisonkit {
cudaError_t rsk_kernels_cuda(uint64_t seed, const int64_t* indices, int64_t n, uint64_t epoch,
                             float center, float stddev, float* out, cudaStream_t stream);
#endif

}  // namespace poisonkit
