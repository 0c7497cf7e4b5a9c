// CUDA driver of the OPS ops. Moments: one thread per (image, element), accumulating with
// double atomics into [K, C, HW] (the images of a batch spread over K x C x HW addresses).
// Apply: one thread per element.
#include "one_pixel.h"

namespace poisonkit {

namespace {

constexpr int kThreads = 256;

int64_t blocks_for(int64_t n) { return (n + kThreads - 1) / kThreads; }

template <typename T>
__global__ void moments_kernel(const T* __restrict__ x, const int64_t* __restrict__ labels,
                               int64_t n, int64_t size, double* __restrict__ sums,
                               double* __restrict__ squares) {
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (t >= n * size) return;
  const int64_t j = t % size;
  const int64_t at = labels[t / size] * size + j;
  const double v = static_cast<double>(x[t]);
  atomicAdd(sums + at, v);
  atomicAdd(squares + at, v * v);
}

template <typename T>
__global__ void apply_kernel(const T* __restrict__ x, T* __restrict__ out,
                             const int64_t* __restrict__ labels,
                             const int64_t* __restrict__ positions,
                             const float* __restrict__ colours, int64_t n, int channels,
                             int64_t plane) {
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t size = channels * plane;
  if (t >= n * size) return;
  const int64_t s = t / size, k = labels[s];
  out[t] = one_pixel_at(x + s * size, t % size, plane, positions[k], colours + k * channels);
}

}  // namespace

template <typename T>
cudaError_t one_pixel_moments_cuda(const T* x, const int64_t* labels, int64_t n, int channels,
                                   int64_t plane, double* sums, double* squares,
                                   cudaStream_t stream) {
  const int64_t total = n * channels * plane;
  if (total == 0) return cudaSuccess;
  moments_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(x, labels, n, channels * plane,
                                                                 sums, squares);
  return cudaGetLastError();
}

template cudaError_t one_pixel_moments_cuda<uint8_t>(const uint8_t*, const int64_t*, int64_t,
                                                     int, int64_t, double*, double*,
                                                     cudaStream_t);
template cudaError_t one_pixel_moments_cuda<float>(const float*, const int64_t*, int64_t, int,
                                                   int64_t, double*, double*, cudaStream_t);

template <typename T>
cudaError_t one_pixel_apply_cuda(const T* x, T* out, const int64_t* labels,
                                 const int64_t* positions, const float* colours, int64_t n,
                                 int channels, int64_t plane, cudaStream_t stream) {
  const int64_t total = n * channels * plane;
  if (total == 0) return cudaSuccess;
  apply_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(x, out, labels, positions, colours,
                                                              n, channels, plane);
  return cudaGetLastError();
}

template cudaError_t one_pixel_apply_cuda<uint8_t>(const uint8_t*, uint8_t*, const int64_t*,
                                                   const int64_t*, const float*, int64_t, int,
                                                   int64_t, cudaStream_t);
template cudaError_t one_pixel_apply_cuda<float>(const float*, float*, const int64_t*,
                                                 const int64_t*, const float*, int64_t, int,
                                                 int64_t, cudaStream_t);

}  // namespace poisonkit
