// The one CPU SIMD dispatch scheme of the kernels. The extension's baseline is x86-64 (SSE2,
// no FMA); hot loops are compiled again for x86-64-v3 (AVX2 + FMA) and v4 (AVX-512) and the
// best version is picked at load time:
//   PK_MULTIVERSION  on a function: gcc target_clones makes the three versions and the
//                    loader's ifunc picks one (filter2d, projection);
//   x86_level()      for drivers that need a different code shape per level (lowpass's
//                    vector width), called once and cached by the caller.
// Helpers called from a multiversioned function must be PK_ALWAYS_INLINE so that they are
// compiled for each version's instruction set.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PK_X86_LEVELS 1
#define PK_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PK_MULTIVERSION
#endif
#define PK_ALWAYS_INLINE inline __attribute__((always_inline))

namespace poisonkit {

#if defined(PK_X86_LEVELS)
// 4 with AVX-512, 3 with AVX2 + FMA, 0 otherwise.
inline int x86_level() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return 4;
  return __builtin_cpu_supports("x86-64-v3") ? 3 : 0;
}
#endif

}  // namespace poisonkit
