// CUDA twin of masked_whiten: a single block (B*T is thousands of elements, once per iteration)
// computes the masked mean, then the unbiased masked variance, in double, then writes every
// element. Three phases separated by block barriers; no host round trip.
#include <cuda_runtime.h>
#include <stdint.h>

#include "cuda_kernels.h"

namespace {

constexpr int kThreads = 1024;

__device__ double block_sum(double v, double* shared) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  if ((threadIdx.x & 31) == 0) shared[threadIdx.x >> 5] = v;
  __syncthreads();
  double total = 0.0;
  for (int w = 0; w < kThreads / 32; ++w) total += shared[w];
  __syncthreads();  // shared is reused by the next call
  return total;
}

__global__ void __launch_bounds__(kThreads) whiten_kernel(const float* __restrict__ x, const float* __restrict__ mask,
                                                          int64_t n, int shift_mean, float* __restrict__ out) {
  __shared__ double shared[kThreads / 32];
  double sx = 0.0, sm = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) {
    sx += static_cast<double>(x[i]) * mask[i];
    sm += mask[i];
  }
  const double count = block_sum(sm, shared);
  const double mean = block_sum(sx, shared) / count;
  double sc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) {
    const double c = x[i] - mean;
    sc += c * c * mask[i];
  }
  const double var = block_sum(sc, shared) / (count - 1.0);  // unbiased (count > 1 checked by the caller)
  const double inv = rsqrt(var + 1e-8);
  for (int64_t i = threadIdx.x; i < n; i += kThreads) {
    const double w = (x[i] - mean) * inv;
    out[i] = static_cast<float>(shift_mean ? w : w + mean);
  }
}

}  // namespace

extern "C" int rarlhf_cuda_masked_whiten(const float* x, const float* mask, int64_t n, int shift_mean, float* out,
                                         void* stream) {
  if (n == 0) return 0;
  whiten_kernel<<<1, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(x, mask, n, shift_mean, out);
  return static_cast<int>(cudaGetLastError());
}
