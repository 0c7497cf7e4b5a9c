// CUDA driver of project_out: one fused kernel, one block per image. Pass 1 computes the
// K coefficients in groups of kGroup (each thread strides over the pixels, then a block
// reduction), pass 2 writes x - Q c with the same residual_at as the CPU's reference sums.
// The image is read as uint8 or float in both passes and stored once.
#include "projection.h"

namespace poisonkit {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kGroup = 8;

template <typename Tin, typename Tout>
__global__ void project_out_kernel(const Tin* __restrict__ in, Tout* __restrict__ out,
                                   const float* __restrict__ qt, ProjectionParams p) {
  extern __shared__ float coeffs[];  // K floats
  __shared__ float partial[kWarps][kGroup];
  const int64_t image = blockIdx.x;
  const Tin* src = in + image * p.dim;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;

  for (int k0 = 0; k0 < p.rank; k0 += kGroup) {
    float acc[kGroup] = {};
    for (int64_t d = threadIdx.x; d < p.dim; d += kThreads) {
      accumulate_coefficients<kGroup>(to_unit(src[d]), qt, d, k0, p, acc);
    }
#pragma unroll
    for (int j = 0; j < kGroup; ++j) {
      for (int offset = 16; offset > 0; offset /= 2)
        acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], offset);
    }
    if (lane == 0) {
#pragma unroll
      for (int j = 0; j < kGroup; ++j) partial[warp][j] = acc[j];
    }
    __syncthreads();
    if (threadIdx.x < kGroup && k0 + threadIdx.x < p.rank) {
      float s = 0.0f;
      for (int w = 0; w < kWarps; ++w) s += partial[w][threadIdx.x];
      coeffs[k0 + threadIdx.x] = s;
    }
    __syncthreads();
  }

  const StoreMode mode = p.store();
  Tout* dst = out + image * p.dim;
  for (int64_t d = threadIdx.x; d < p.dim; d += kThreads) {
    store_unit(residual_at(to_unit(src[d]), coeffs, qt, d, p), dst + d, mode);
  }
}

}  // namespace

template <typename Tin, typename Tout>
cudaError_t project_out_cuda(const Tin* in, Tout* out, int64_t n, const float* qt,
                             const ProjectionParams& p, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (p.rank < 1 || p.rank > kProjectionCudaMaxRank) return cudaErrorInvalidValue;
  // At most 32 KiB of coefficients: within the default 48 KiB of shared memory.
  const size_t shared = static_cast<size_t>(p.rank) * sizeof(float);
  project_out_kernel<Tin, Tout><<<static_cast<unsigned>(n), kThreads, shared, stream>>>(in, out,
                                                                                       qt, p);
  return cudaGetLastError();
}

template cudaError_t project_out_cuda<uint8_t, float>(const uint8_t*, float*, int64_t,
                                                      const float*, const ProjectionParams&,
                                                      cudaStream_t);
template cudaError_t project_out_cuda<uint8_t, uint8_t>(const uint8_t*, uint8_t*, int64_t,
                                                        const float*, const ProjectionParams&,
                                                        cudaStream_t);
template cudaError_t project_out_cuda<float, float>(const float*, float*, int64_t, const float*,
                                                    const ProjectionParams&, cudaStream_t);

}  // namespace poisonkit
