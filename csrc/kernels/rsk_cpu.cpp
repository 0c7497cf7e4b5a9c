// CPU driver of the RSK kernels: one sample's kernel after the other (a few hundred ns each).
#include "rsk.h"

namespace poisonkit {

void rsk_kernels_cpu(uint64_t seed, const int64_t* indices, int64_t n, uint64_t epoch,
                     float center, float stddev, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    rsk_kernel(seed, static_cast<uint64_t>(indices[i]), epoch, center, stddev,
               out + i * kRskTaps);
  }
}

}  // namespace poisonkit
