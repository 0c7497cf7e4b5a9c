// CUDA driver of the RSK kernels: one thread per sample, the same rsk_kernel as the CPU.
#include "launch.cuh"
#include "rsk.h"

namespace poisonkit {

namespace {

constexpr int kThreads = 128;

__global__ void rsk_kernels_kernel(uint64_t seed, const int64_t* __restrict__ indices, int64_t n,
                                   uint64_t epoch, float center, float stddev,
                                   float* __restrict__ out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) rsk_kernel(seed, static_cast<uint64_t>(indices[i]), epoch, center, stddev,
                        out + i * kRskTaps);
}

}  // namespace

cudaError_t rsk_kernels_cuda(uint64_t seed, const int64_t* indices, int64_t n, uint64_t epoch,
                             float center, float stddev, float* out, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  rsk_kernels_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(seed, indices, n, epoch,
                                                                      center, stddev, out);
  return cudaGetLastError();
}

}  // namespace poisonkit
