// CUDA driver of filter2d: one block computes a 32x8 output tile of one (image, channel)
// plane from a shared-memory tile plus halo, calling the same filter_at as the CPU.
// normalize_max needs the image's global max first, so that case writes float results and
// per-image maxima, then a second elementwise kernel divides and converts.
#include <cfloat>

#include "filter2d.h"
#include "launch.cuh"

namespace poisonkit {

namespace {

constexpr int kTileX = 32;
constexpr int kTileY = 8;

// Float max through integer atomics (valid for any sign; the slot starts at -FLT_MAX). NaN
// absorbs: as an int its bits 0x7fffffff exceed every other float's (negative floats are
// negative ints), and as an unsigned they stay below every negative float's, so no later
// update replaces it.
__device__ void atomic_max_float(float* slot, float v) {
  if (v != v) {
    atomicMax(reinterpret_cast<int*>(slot), 0x7fffffff);
  } else if (v >= 0.0f) {
    atomicMax(reinterpret_cast<int*>(slot), __float_as_int(v));
  } else {
    atomicMin(reinterpret_cast<unsigned int*>(slot), __float_as_uint(v));
  }
}

__global__ void fill_kernel(float* dst, int64_t n, float value) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) dst[i] = value;
}

template <typename T, int KH, int KW>
__global__ void filter2d_kernel(const T* __restrict__ in, T* __restrict__ out,
                                const float* __restrict__ weights, Filter2dParams p,
                                float* __restrict__ filtered, float* __restrict__ maxes) {
  constexpr int SW = kTileX + KW - 1;
  constexpr int SH = kTileY + KH - 1;
  __shared__ float tile[SH * SW];
  __shared__ float k[KH * KW];

  const int64_t plane_index = blockIdx.x;  // n * C + c
  const int64_t n = plane_index / p.channels;
  const int c = static_cast<int>(plane_index % p.channels);
  const int y0 = blockIdx.y * kTileY, x0 = blockIdx.z * kTileX;
  const int OH = p.out_h(), OW = p.out_w();
  const T* src = in + plane_index * p.height * p.width;

  const int tid = threadIdx.y * kTileX + threadIdx.x;
  for (int t = tid; t < SH * SW; t += kTileX * kTileY) {
    const int si = source_index(y0 + t / SW - p.pad_h(), p.height, p.padding);
    const int sj = source_index(x0 + t % SW - p.pad_w(), p.width, p.padding);
    tile[t] = (si < 0 || sj < 0) ? 0.0f : to_unit(src[si * p.width + sj]);
  }
  if (tid < KH * KW) k[tid] = p.kernel_of(weights, n, c)[tid];
  __syncthreads();

  const int x = x0 + threadIdx.x, y = y0 + threadIdx.y;
  const bool inside = x < OW && y < OH;
  float v = -FLT_MAX;
  if (inside) {
    const float* at = tile + threadIdx.y * SW + threadIdx.x;
    v = filter_at<KH, KW>([at](int a, int b) { return at[a * SW + b]; }, k);
  }
  const int64_t index = (plane_index * OH + y) * OW + x;
  if (!p.normalize_max) {
    if (inside) store_unit(v, out + index, p.store());
    return;
  }
  if (inside) filtered[index] = v;
  // Warp max first, one atomic per warp. A non-finite value makes the image max NaN
  // (normalize_by's rule, as the CPU's run_max), whatever the block order.
  const bool bad = __any_sync(0xffffffffu, !isfinite(v));
  for (int offset = 16; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  if ((tid & 31) == 0) atomic_max_float(maxes + n, bad ? __int_as_float(0x7fffffff) : v);
}

template <typename T>
__global__ void normalize_kernel(const float* __restrict__ filtered,
                                 const float* __restrict__ maxes, T* __restrict__ out,
                                 int64_t total, int64_t image_size, Filter2dParams p) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < total) store_unit(normalize_by(filtered[i], maxes[i / image_size]), out + i,
                            p.store());
}

}  // namespace

size_t filter2d_cuda_scratch_floats(const Filter2dParams& p, int64_t n) {
  if (!p.normalize_max) return 0;
  return n + n * p.channels * static_cast<int64_t>(p.out_h()) * p.out_w();
}

template <typename T>
cudaError_t filter2d_cuda(const T* in, T* out, const float* weights, int64_t n,
                          const Filter2dParams& p, float* scratch, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  float* maxes = p.normalize_max ? scratch : nullptr;
  float* filtered = p.normalize_max ? scratch + n : nullptr;
  if (p.normalize_max) {
    fill_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(maxes, n, -FLT_MAX);
  }
  const dim3 block(kTileX, kTileY);
  const dim3 grid(static_cast<unsigned>(n * p.channels), blocks_for(p.out_h(), kTileY),
                  blocks_for(p.out_w(), kTileX));
  const bool launched = dispatch_kernel_size(p.kernel_h, p.kernel_w, [&]<int KH, int KW>() {
    filter2d_kernel<T, KH, KW><<<grid, block, 0, stream>>>(in, out, weights, p, filtered, maxes);
  });
  if (!launched) return cudaErrorInvalidValue;
  if (p.normalize_max) {
    const int64_t image_size = static_cast<int64_t>(p.channels) * p.out_h() * p.out_w();
    const int64_t total = n * image_size;
    normalize_kernel<T><<<blocks_for(total, 256), 256, 0, stream>>>(filtered, maxes, out, total,
                                                                     image_size, p);
  }
  return cudaGetLastError();
}

template cudaError_t filter2d_cuda<uint8_t>(const uint8_t*, uint8_t*, const float*, int64_t,
                                            const Filter2dParams&, float*, cudaStream_t);
template cudaError_t filter2d_cuda<float>(const float*, float*, const float*, int64_t,
                                          const Filter2dParams&, float*, cudaStream_t);

}  // namespace poisonkit
