// GPU layout copies between DALI's per-sample (usually HWC) images and the contiguous NCHW
// batches the shared CUDA kernels take. One thread per element; grid rows take the samples
// (at most 65,535 rows, each looping over every gridDim.y-th sample).
#include "../kernels/launch.cuh"
#include "layout.h"

namespace poisonkit::dali_ops {

namespace {

constexpr int kThreads = 256;

struct PlanarIndex {
  int c, y, x;
};

__device__ PlanarIndex planar_index(int64_t i, const PlanarShape& s) {
  const int64_t plane = static_cast<int64_t>(s.h) * s.w;
  const int64_t r = i % plane;
  return {static_cast<int>(i / plane), static_cast<int>(r / s.w), static_cast<int>(r % s.w)};
}

template <typename T>
__global__ void gather_kernel(const T* const* srcs, T* dst, int n, PlanarShape s, Strides st) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t volume = s.volume();
  if (i >= volume) return;
  const PlanarIndex p = planar_index(i, s);
  const int64_t offset = p.c * st.c + p.y * st.y + p.x * st.x;
  for (int64_t k = blockIdx.y; k < n; k += gridDim.y) dst[k * volume + i] = srcs[k][offset];
}

template <typename T>
__global__ void scatter_kernel(const T* src, T* const* dsts, int n, PlanarShape s, Strides st) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t volume = s.volume();
  if (i >= volume) return;
  const PlanarIndex p = planar_index(i, s);
  const int64_t offset = p.c * st.c + p.y * st.y + p.x * st.x;
  for (int64_t k = blockIdx.y; k < n; k += gridDim.y) dsts[k][offset] = src[k * volume + i];
}

dim3 grid_for(int n, const PlanarShape& s) {
  return dim3(static_cast<unsigned>(blocks_for(s.volume(), kThreads)), grid_y_for(n));
}

}  // namespace

template <typename T>
cudaError_t gather_planar_cuda(const T* const* srcs, T* dst, int n, const PlanarShape& s,
                               const Strides& st, cudaStream_t stream) {
  if (n == 0 || s.volume() == 0) return cudaSuccess;
  gather_kernel<T><<<grid_for(n, s), kThreads, 0, stream>>>(srcs, dst, n, s, st);
  return cudaGetLastError();
}

template <typename T>
cudaError_t scatter_planar_cuda(const T* src, T* const* dsts, int n, const PlanarShape& s,
                                const Strides& st, cudaStream_t stream) {
  if (n == 0 || s.volume() == 0) return cudaSuccess;
  scatter_kernel<T><<<grid_for(n, s), kThreads, 0, stream>>>(src, dsts, n, s, st);
  return cudaGetLastError();
}

template cudaError_t gather_planar_cuda<uint8_t>(const uint8_t* const*, uint8_t*, int,
                                                 const PlanarShape&, const Strides&, cudaStream_t);
template cudaError_t gather_planar_cuda<float>(const float* const*, float*, int,
                                               const PlanarShape&, const Strides&, cudaStream_t);
template cudaError_t scatter_planar_cuda<uint8_t>(const uint8_t*, uint8_t* const*, int,
                                                  const PlanarShape&, const Strides&, cudaStream_t);
template cudaError_t scatter_planar_cuda<float>(const float*, float* const*, int,
                                                const PlanarShape&, const Strides&, cudaStream_t);

}  // namespace poisonkit::dali_ops
