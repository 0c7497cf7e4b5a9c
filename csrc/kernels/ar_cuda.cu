// CUDA driver of the AR ops. Generation: one thread per (sample, channel) runs the same
// initial conditions and raster recursion as the CPU in a global-memory canvas (rows stay
// in L1/L2), then one block per sample reduces the norm and writes the scaled crop.
// Filtering: one thread per (sample, class, output pixel).
#include <cfloat>

#include "ar.h"
#include "launch.cuh"

namespace poisonkit {

namespace {

constexpr int kThreads = 256;

// kArOk, or why sample s cannot be generated (p.num_classes > 0 only).
__device__ uint8_t sample_status(const int64_t* labels, const int64_t* indices, int64_t s,
                                 const ArParams& p) {
  if (p.num_classes <= 0) return kArOk;
  if (labels[s] < 0 || labels[s] >= p.num_classes) return kArBadLabel;
  return indices[s] < 0 ? kArBadIndex : kArOk;
}

__global__ void ar_recurse_kernel(const float* __restrict__ coeffs,
                                  const int64_t* __restrict__ labels,
                                  const int64_t* __restrict__ indices, int64_t n, ArParams p,
                                  float* __restrict__ canvas) {
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (t >= n * p.channels) return;
  const int64_t s = t / p.channels;
  const int c = static_cast<int>(t % p.channels);
  if (sample_status(labels, indices, s, p) != kArOk) return;
  const PhiloxStream stream =
      philox_stream(p.key, static_cast<uint64_t>(indices[s]), kArCanvasStream);
  float* plane = canvas + t * p.canvas_plane();
  ar_initial_conditions(stream, p, c, plane);
  ar_recurse_plane(coeffs + (labels[s] * p.channels + c) * kArTaps, p, plane);
}

// Block-wide sum (L2) or max (L-inf) of non-negative per-thread values; every thread gets
// the result.
__device__ float block_reduce(float v, bool take_max) {
  __shared__ float partial[kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2) {
    const float o = __shfl_xor_sync(0xffffffffu, v, offset);
    v = take_max ? fmaxf(v, o) : v + o;
  }
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  v = 0.0f;
  for (int w = 0; w < kThreads / 32; ++w) v = take_max ? fmaxf(v, partial[w]) : v + partial[w];
  return v;
}

__global__ void ar_crop_scale_kernel(const float* __restrict__ canvas,
                                     const int64_t* __restrict__ labels,
                                     const int64_t* __restrict__ indices, ArParams p,
                                     float* __restrict__ out, uint8_t* __restrict__ finite) {
  const int64_t s = blockIdx.x;
  const uint8_t status = sample_status(labels, indices, s, p);
  if (status != kArOk) {  // uniform over the block: no thread reaches a barrier below
    if (threadIdx.x == 0) finite[s] = status;
    return;
  }
  const int64_t total = p.channels * p.out_plane();
  const bool linf = p.norm == ArNorm::Linf;
  const float* src = canvas + s * p.channels * p.canvas_plane();
  float acc = 0.0f;
  int bad = 0;
  for (int64_t i = threadIdx.x; i < total; i += blockDim.x) {
    const int64_t c = i / p.out_plane(), yx = i % p.out_plane();
    const float v = src[c * p.canvas_plane() + (yx / p.width + p.crop) * p.canvas_w() +
                        yx % p.width + p.crop];
    acc = linf ? fmaxf(acc, fabsf(v)) : acc + v * v;
    bad |= !isfinite(v);
  }
  const float reduced = block_reduce(acc, linf);
  bad = __syncthreads_or(bad);
  const double norm = linf ? reduced : sqrt(static_cast<double>(reduced));
  if (threadIdx.x == 0)
    finite[s] = p.norm == ArNorm::None || (!bad && isfinite(norm)) ? kArOk : kArOverflow;
  const float scale = ar_scale(p, norm);
  float* dst = out + s * total;
  for (int64_t i = threadIdx.x; i < total; i += blockDim.x) {
    const int64_t c = i / p.out_plane(), yx = i % p.out_plane();
    dst[i] = scale * src[c * p.canvas_plane() + (yx / p.width + p.crop) * p.canvas_w() +
                         yx % p.width + p.crop];
  }
}

template <typename T>
__global__ void ar_add_kernel(const T* __restrict__ x, const float* __restrict__ delta,
                              T* __restrict__ out, int64_t total) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < total) ar_add_at(x, delta, out, i);
}

__global__ void ar_canvas_kernel(const int64_t* __restrict__ indices, int64_t n, ArParams p,
                                 float* __restrict__ out) {
  const int64_t size = p.channels * p.canvas_plane();
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (t >= n * size) return;
  const PhiloxStream s =
      philox_stream(p.key, static_cast<uint64_t>(indices[t / size]), kArCanvasStream);
  out[t] = normal_draw(s, static_cast<uint64_t>(t % size));
}

template <typename T>
__global__ void ar_filter_kernel(const T* __restrict__ x, const float* __restrict__ coeffs,
                                 int64_t n, int num_classes, int channels, int height,
                                 int width, float* __restrict__ out) {
  const int OH = height - 2, OW = width - 2;
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (t >= n * num_classes * OH * OW) return;
  const int ox = static_cast<int>(t % OW), oy = static_cast<int>((t / OW) % OH);
  const int k = static_cast<int>((t / (static_cast<int64_t>(OW) * OH)) % num_classes);
  const int64_t s = t / (static_cast<int64_t>(OW) * OH * num_classes);
  const int64_t plane = static_cast<int64_t>(height) * width;
  const T* at = x + s * channels * plane + static_cast<int64_t>(oy) * width + ox;
  out[t] = nan_if_nonfinite(ar_filter_at(coeffs + static_cast<int64_t>(k) * channels * kArTaps,
                                         channels, [at, plane, width](int c, int a, int b) {
                                           return to_unit(at[c * plane + a * width + b]);
                                         }));
}

}  // namespace

size_t ar_cuda_scratch_floats(const ArParams& p, int64_t n) {
  return static_cast<size_t>(n) * p.channels * p.canvas_plane();
}

cudaError_t ar_generate_cuda(const float* coeffs, const int64_t* labels, const int64_t* indices,
                             int64_t n, const ArParams& p, float* out, uint8_t* finite,
                             float* scratch, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  ar_recurse_kernel<<<blocks_for(n * p.channels, 64), 64, 0, stream>>>(coeffs, labels, indices,
                                                                        n, p, scratch);
  ar_crop_scale_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(scratch, labels,
                                                                          indices, p, out,
                                                                          finite);
  return cudaGetLastError();
}

size_t ar_poison_cuda_scratch_floats(const ArParams& p, int64_t n) {
  return ar_cuda_scratch_floats(p, n) + static_cast<size_t>(n) * p.channels * p.out_plane();
}

template <typename T>
cudaError_t ar_poison_cuda(const T* x, T* out, const float* coeffs, const int64_t* labels,
                           const int64_t* indices, int64_t n, const ArParams& p, uint8_t* finite,
                           float* scratch, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const int64_t total = n * p.channels * p.out_plane();
  float* delta = scratch;
  const cudaError_t err =
      ar_generate_cuda(coeffs, labels, indices, n, p, delta, finite, scratch + total, stream);
  if (err != cudaSuccess) return err;
  ar_add_kernel<T><<<blocks_for(total, kThreads), kThreads, 0, stream>>>(x, delta, out, total);
  return cudaGetLastError();
}

template cudaError_t ar_poison_cuda<uint8_t>(const uint8_t*, uint8_t*, const float*,
                                             const int64_t*, const int64_t*, int64_t,
                                             const ArParams&, uint8_t*, float*, cudaStream_t);
template cudaError_t ar_poison_cuda<float>(const float*, float*, const float*, const int64_t*,
                                           const int64_t*, int64_t, const ArParams&, uint8_t*,
                                           float*, cudaStream_t);

cudaError_t ar_canvas_cuda(const int64_t* indices, int64_t n, const ArParams& p, float* out,
                           cudaStream_t stream) {
  const int64_t total = n * p.channels * p.canvas_plane();
  if (total == 0) return cudaSuccess;
  ar_canvas_kernel<<<blocks_for(total, kThreads), kThreads, 0, stream>>>(indices, n, p, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t ar_filter_cuda(const T* x, const float* coeffs, int64_t n, int num_classes,
                           int channels, int height, int width, float* out,
                           cudaStream_t stream) {
  const int64_t total = n * num_classes * static_cast<int64_t>(height - 2) * (width - 2);
  if (total == 0) return cudaSuccess;
  ar_filter_kernel<T><<<blocks_for(total, kThreads), kThreads, 0, stream>>>(
      x, coeffs, n, num_classes, channels, height, width, out);
  return cudaGetLastError();
}

template cudaError_t ar_filter_cuda<uint8_t>(const uint8_t*, const float*, int64_t, int, int,
                                             int, int, float*, cudaStream_t);
template cudaError_t ar_filter_cuda<float>(const float*, const float*, int64_t, int, int, int,
                                           int, float*, cudaStream_t);

}  // namespace poisonkit
