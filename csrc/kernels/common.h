// Framework-free helpers shared by every poisonkit kernel: host/device qualifiers, border
// handling and the [0,1] <-> uint8 conversions. No torch, no DALI.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define PK_HD __host__ __device__ __forceinline__
#else
#define PK_HD inline
#endif

namespace poisonkit {

// How pixels outside the image are read. Valid: no padding, the output shrinks.
enum class Padding : int { Zeros = 0, Reflect = 1, Replicate = 2, Valid = 3 };

// float -> uint8 conversion. Nearest rounds half up; Truncate is what the CUDA poison's
// reference does (numpy astype(uint8) of 255 * z).
enum class Rounding : int { Nearest = 0, Truncate = 1 };

// torch 'reflect' (no edge repeat): -1 -> 1, n -> n - 2. Needs n > 1 for any i outside.
PK_HD int reflect_index(int i, int n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) {
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
  }
  return i;
}

// Source index of padded coordinate i along an axis of length n, or -1 for a zero pixel.
PK_HD int source_index(int i, int n, Padding padding) {
  if (i >= 0 && i < n) return i;
  switch (padding) {
    case Padding::Reflect: return reflect_index(i, n);
    case Padding::Replicate: return i < 0 ? 0 : n - 1;
    default: return -1;
  }
}

// uint8 -> [0,1] exactly as torchvision's ToTensor does (a division, not a reciprocal).
PK_HD float to_unit(uint8_t v) { return static_cast<float>(v) / 255.0f; }
PK_HD float to_unit(float v) { return v; }

// How a [0,1]-unit result is stored: the rounding offset added before truncation to uint8
// (0.5 rounds half up, 0 truncates) and whether float output is clamped to [0,1].
struct StoreMode {
  float bias = 0.5f;
  bool clamp = true;
};

PK_HD StoreMode store_mode(Rounding rounding, bool clamp) {
  return StoreMode{rounding == Rounding::Nearest ? 0.5f : 0.0f, clamp};
}

// [0,1] -> uint8: scale by 255, round or truncate, saturate; NaN maps to 0. Written as
// selects with the bias precomputed so that CPU loops over it vectorise ((a > b) ? a : b
// is exactly the SSE/AVX max instruction, NaN included).
PK_HD uint8_t unit_to_u8(float z, float bias) {
  float s = z * 255.0f;
  s = s > 0.0f ? s : 0.0f;
  s = s + bias;
  s = s < 255.0f ? s : 255.0f;
  return static_cast<uint8_t>(static_cast<int>(s));
}

// Non-finite values (README, "Non-finite pixels"): float images may hold NaN or +-inf and
// no op looks for them (that would cost a pass, and a device sync on CUDA). Every output
// value computed from a non-finite value is NaN, on every backend: IEEE arithmetic already
// makes such a value non-finite (0 * inf is NaN), and this turns +-inf into NaN before a
// clamp could hide it. z - z is 0 for finite z, NaN otherwise; branch-free, so it vectorises.
PK_HD float nan_if_nonfinite(float z) { return z + (z - z); }

// Clamp to [0,1], keeping NaN as NaN so that bad float input stays visible.
PK_HD float clamp_unit(float z) { return z < 0.0f ? 0.0f : (z > 1.0f ? 1.0f : z); }

// Store a [0,1]-unit value into the output dtype (float: non-finite -> NaN, then clamped).
PK_HD void store_unit(float z, uint8_t* dst, StoreMode mode) { *dst = unit_to_u8(z, mode.bias); }
PK_HD void store_unit(float z, float* dst, StoreMode mode) {
  *dst = (mode.clamp ? clamp_unit(z) : z) + (z - z);
}

}  // namespace poisonkit
