// CUDA driver of the LSP ops: one block per sample. The block draws z into shared memory,
// computes the F point features (one thread per feature, coalesced reads of A's rows),
// reduces their squared norm, then writes every pixel of the image.
#include "lsp.h"

namespace poisonkit {

namespace {

constexpr int kThreads = 128;

__device__ double block_sum(double v) {
  __shared__ double partial[kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  v = 0.0;
  for (int w = 0; w < kThreads / 32; ++w) v += partial[w];
  return v;
}

// Poisons sample blockIdx.x of x into out, or (x == nullptr) writes its perturbation to delta.
template <typename T>
__global__ void lsp_kernel(const T* __restrict__ x, T* __restrict__ out,
                           float* __restrict__ delta, const float* __restrict__ centres,
                           const float* __restrict__ mixing, const int64_t* __restrict__ labels,
                           const int64_t* __restrict__ indices, LspParams p) {
  extern __shared__ float shared[];
  const int F = p.features();
  float* z = shared;
  float* point = shared + F;
  const int64_t s = blockIdx.x;
  const PhiloxStream stream =
      philox_stream(p.key, static_cast<uint64_t>(indices[s]), kLspSampleStream);
  for (int f = threadIdx.x; f < F; f += blockDim.x) z[f] = normal_draw(stream, f);
  __syncthreads();
  const int64_t k = labels[s];
  double sq = 0.0;
  for (int j = threadIdx.x; j < F; j += blockDim.x) {
    const float v = lsp_feature(z, centres + k * F, mixing + k * F * F, F, j);
    point[j] = v;
    sq += static_cast<double>(v) * v;
  }
  const float scale = lsp_scale(p, sqrt(block_sum(sq)));
  __syncthreads();
  const int64_t size = p.channels * p.plane();
  for (int64_t i = threadIdx.x; i < size; i += blockDim.x) {
    const int c = static_cast<int>(i / p.plane());
    const int yx = static_cast<int>(i % p.plane());
    const float d = scale * point[lsp_feature_of(p, c, yx / p.width, yx % p.width)];
    if (x == nullptr) {
      delta[s * size + i] = d;
    } else {
      lsp_store(x[s * size + i], d, out + s * size + i);
    }
  }
}

size_t shared_bytes(const LspParams& p) { return 2 * sizeof(float) * p.features(); }

}  // namespace

cudaError_t lsp_generate_cuda(const float* centres, const float* mixing, const int64_t* labels,
                              const int64_t* indices, int64_t n, const LspParams& p, float* out,
                              cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  lsp_kernel<float><<<static_cast<unsigned>(n), kThreads, shared_bytes(p), stream>>>(
      nullptr, nullptr, out, centres, mixing, labels, indices, p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t lsp_poison_cuda(const T* x, T* out, const float* centres, const float* mixing,
                            const int64_t* labels, const int64_t* indices, int64_t n,
                            const LspParams& p, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  lsp_kernel<T><<<static_cast<unsigned>(n), kThreads, shared_bytes(p), stream>>>(
      x, out, nullptr, centres, mixing, labels, indices, p);
  return cudaGetLastError();
}

template cudaError_t lsp_poison_cuda<uint8_t>(const uint8_t*, uint8_t*, const float*,
                                              const float*, const int64_t*, const int64_t*,
                                              int64_t, const LspParams&, cudaStream_t);
template cudaError_t lsp_poison_cuda<float>(const float*, float*, const float*, const float*,
                                            const int64_t*, const int64_t*, int64_t,
                                            const LspParams&, cudaStream_t);

}  // namespace poisonkit
