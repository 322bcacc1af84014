// CUDA twin of gae_scan: one thread per row runs the reverse recursion over T (T is a response
// length, tens of steps; B rows give the parallelism). Same arithmetic order as the CPU twin.
#include <cuda_runtime.h>
#include <stdint.h>

#include "cuda_kernels.h"

namespace {

__global__ void gae_kernel(const float* __restrict__ rewards, const float* __restrict__ values,
                           const float* __restrict__ mask, int64_t batch, int64_t steps, float gamma, float gl,
                           float* __restrict__ adv, float* __restrict__ ret) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= batch) return;
  const int64_t o = b * steps;
  float last = 0.0f, next_v = 0.0f;
  for (int64_t t = steps - 1; t >= 0; --t) {
    const float m = mask[o + t];
    const float vt = values[o + t] * m;
    const float delta = rewards[o + t] * m + gamma * next_v - vt;
    last = delta + gl * last;
    adv[o + t] = last;
    ret[o + t] = last + vt;
    next_v = vt;
  }
}

}  // namespace

extern "C" int rarlhf_cuda_gae_scan(const float* rewards, const float* values, const float* mask, int64_t batch,
                                    int64_t steps, float gamma, float lam, float* advantages, float* returns,
                                    void* stream) {
  if (batch == 0 || steps == 0) return 0;
  const int threads = 128;
  const unsigned blocks = static_cast<unsigned>((batch + threads - 1) / threads);
  // gamma * lam is formed in fp32 from fp32 inputs, as on the CPU twin.
  gae_kernel<<<blocks, threads, 0, static_cast<cudaStream_t>(stream)>>>(rewards, values, mask, batch, steps, gamma,
                                                                        gamma * lam, advantages, returns);
  return static_cast<int>(cudaGetLastError());
}
