// CUDA driver of lowpass: the four products of lowpass.h as four elementwise kernels over
// the whole batch (one thread per entry, each a `contract`), intermediates in scratch. The
// last one converts to the output dtype. Products are tiny (rank x size), so a plain
// thread-per-entry form is already memory bound and needs no shared-memory tiling.
#include "launch.cuh"
#include "lowpass.h"

namespace poisonkit {

namespace {

constexpr int kThreads = 256;

// u[plane][a][j] = sum_i R[a][i] x[plane][i][j]
template <typename T>
__global__ void rows_kernel(const T* __restrict__ x, const float* __restrict__ rows,
                            float* __restrict__ u, int64_t total, LowpassParams p) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= total) return;
  const int j = static_cast<int>(e % p.width);
  const int a = static_cast<int>(e / p.width % p.rank_h);
  const int64_t plane = e / (static_cast<int64_t>(p.width) * p.rank_h);
  const T* src = x + plane * p.height * p.width;
  u[e] = contract(rows + a * p.height, 1, src + j, p.width, p.height);
}

// y[plane][a][b] = m[a][b] * sum_j u[plane][a][j] C[b][j]
__global__ void coefficients_kernel(const float* __restrict__ u, const float* __restrict__ cols,
                                    const float* __restrict__ mask, float* __restrict__ y,
                                    int64_t total, LowpassParams p) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= total) return;
  const int b = static_cast<int>(e % p.rank_w);
  const int64_t row = e / p.rank_w;  // plane * rank_h + a
  const float v = contract(u + row * p.width, 1, cols + b * p.width, 1, p.width);
  y[e] = mask != nullptr ? v * mask[row % p.rank_h * p.rank_w + b] : v;
}

// v[plane][a][j] = sum_b y[plane][a][b] C[b][j]
__global__ void cols_kernel(const float* __restrict__ y, const float* __restrict__ cols,
                            float* __restrict__ v, int64_t total, LowpassParams p) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= total) return;
  const int j = static_cast<int>(e % p.width);
  const int64_t row = e / p.width;
  v[e] = contract(y + row * p.rank_w, 1, cols + j, p.width, p.rank_w);
}

// out[plane][i][j] = sum_a R[a][i] v[plane][a][j]
template <typename T>
__global__ void synthesis_kernel(const float* __restrict__ v, const float* __restrict__ rows,
                                 T* __restrict__ out, int64_t total, LowpassParams p) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= total) return;
  const int j = static_cast<int>(e % p.width);
  const int i = static_cast<int>(e / p.width % p.height);
  const int64_t plane = e / (static_cast<int64_t>(p.width) * p.height);
  const float z = contract(rows + i, p.height, v + plane * p.rank_h * p.width + j, p.width,
                           p.rank_h);
  store_unit(z, out + e, p.store());
}

}  // namespace

size_t lowpass_cuda_scratch_floats(const LowpassParams& p, int64_t n) {
  const int64_t planes = n * p.channels;
  return planes * (2 * static_cast<int64_t>(p.rank_h) * p.width +
                   static_cast<int64_t>(p.rank_h) * p.rank_w);
}

template <typename T>
cudaError_t lowpass_cuda(const T* in, T* out, const float* rows, const float* cols,
                         const float* mask, int64_t n, const LowpassParams& p, float* scratch,
                         cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const int64_t planes = n * p.channels;
  const int64_t n_u = planes * p.rank_h * p.width, n_y = planes * p.rank_h * p.rank_w;
  float* u = scratch;
  float* y = u + n_u;
  float* v = y + n_y;
  rows_kernel<T><<<blocks_for(n_u, kThreads), kThreads, 0, stream>>>(in, rows, u, n_u, p);
  coefficients_kernel<<<blocks_for(n_y, kThreads), kThreads, 0, stream>>>(u, cols, p.masked ? mask : nullptr,
                                                                 y, n_y, p);
  cols_kernel<<<blocks_for(n_u, kThreads), kThreads, 0, stream>>>(y, cols, v, n_u, p);
  const int64_t n_out = planes * p.height * p.width;
  synthesis_kernel<T><<<blocks_for(n_out, kThreads), kThreads, 0, stream>>>(v, rows, out, n_out, p);
  return cudaGetLastError();
}

template cudaError_t lowpass_cuda<uint8_t>(const uint8_t*, uint8_t*, const float*, const float*,
                                           const float*, int64_t, const LowpassParams&, float*,
                                           cudaStream_t);
template cudaError_t lowpass_cuda<float>(const float*, float*, const float*, const float*,
                                         const float*, int64_t, const LowpassParams&, float*,
                                         cudaStream_t);

}  // namespace poisonkit
