// Counter-based random numbers: Philox 4x32-10 (Salmon et al., SC 2011; the Random123
// reference) and Box-Muller normals. Every draw is a pure function of (key, sample index,
// stream, draw number), so a poison is reproducible from its key alone and identical
// whatever the batch size, order or worker count. Across backends the Philox words are
// identical; the normals agree to a few float ulps (CUDA's logf / sincosf are not glibc's),
// so CUDA results match the CPU's to float rounding (uint8 pixels within one level at a
// rounding tie), not bit for bit. The CPU backends (torch, DALI) are bit-identical.
//
// Layout: key words (k0, k1) = the 64-bit key (low, high); counter words
// (block, index low, index high, stream). Normal draw d comes from Box-Muller pair d / 2,
// which uses words (0, 1) or (2, 3) of block d / 4; even d takes r cos(theta), odd d
// r sin(theta).
#pragma once
#include <cmath>
#include <cstdint>

#include "common.h"

namespace poisonkit {

struct Philox4x32 {
  uint32_t v[4];
};

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1

// The ten rounds; the key is bumped between rounds.
PK_HD Philox4x32 philox4x32_10(Philox4x32 ctr, uint32_t k0, uint32_t k1) {
#if defined(__CUDACC__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * ctr.v[0];
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * ctr.v[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    ctr = Philox4x32{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  return ctr;
}

// The draws of one sample: its key, index and stream (which keeps the draws of different
// uses of one key apart).
struct PhiloxStream {
  uint32_t k0, k1, index_lo, index_hi, stream;
};

PK_HD PhiloxStream philox_stream(uint64_t key, uint64_t index, uint32_t stream) {
  return PhiloxStream{static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32),
                      static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), stream};
}

PK_HD Philox4x32 philox_block(const PhiloxStream& s, uint32_t block) {
  return philox4x32_10(Philox4x32{{block, s.index_lo, s.index_hi, s.stream}}, s.k0, s.k1);
}

// A uniform in (0, 1) from the top 23 bits: (w / 2^9 + 0.5) / 2^23, exact in float, so any
// language reproduces it bit for bit.
PK_HD float unit_open(uint32_t w) {
  return (static_cast<float>(w >> 9) + 0.5f) * 1.1920928955078125e-07f;
}

// Box-Muller on two words: r = sqrt(-2 ln u1), theta = 2 pi u2.
PK_HD void box_muller(uint32_t w1, uint32_t w2, float* z0, float* z1) {
  const float r = sqrtf(-2.0f * logf(unit_open(w1)));
  const float theta = 6.2831853071795865f * unit_open(w2);
#if defined(__CUDA_ARCH__)
  float s, c;
  sincosf(theta, &s, &c);
#else
  const float s = std::sin(theta), c = std::cos(theta);
#endif
  *z0 = r * c;
  *z1 = r * s;
}

// Normal draws 2 * pair and 2 * pair + 1.
PK_HD void normal_pair(const PhiloxStream& s, uint64_t pair, float* z0, float* z1) {
  const Philox4x32 b = philox_block(s, static_cast<uint32_t>(pair >> 1));
  const int w = static_cast<int>(pair & 1) * 2;
  box_muller(b.v[w], b.v[w + 1], z0, z1);
}

// Normal draw d alone (half of a Box-Muller pair is thrown away).
PK_HD float normal_draw(const PhiloxStream& s, uint64_t d) {
  float z0, z1;
  normal_pair(s, d >> 1, &z0, &z1);
  return (d & 1) ? z1 : z0;
}

// Normal draws first .. first + count - 1 into dst: single draws and pairs up to a block
// boundary, then one Philox block per four draws.
PK_HD void normal_run(const PhiloxStream& s, uint64_t first, int64_t count, float* dst) {
  int64_t i = 0;
  if (i < count && ((first + i) & 1)) {
    dst[i] = normal_draw(s, first + i);
    ++i;
  }
  if (i + 1 < count && ((first + i) & 3) == 2) {
    normal_pair(s, (first + i) >> 1, dst + i, dst + i + 1);
    i += 2;
  }
  for (; i + 3 < count; i += 4) {
    const Philox4x32 b = philox_block(s, static_cast<uint32_t>((first + i) >> 2));
    box_muller(b.v[0], b.v[1], dst + i, dst + i + 1);
    box_muller(b.v[2], b.v[3], dst + i + 2, dst + i + 3);
  }
  if (i + 1 < count) {
    normal_pair(s, (first + i) >> 1, dst + i, dst + i + 1);
    i += 2;
  }
  if (i < count) dst[i] = normal_draw(s, first + i);
}

}  // namespace poisonkit
