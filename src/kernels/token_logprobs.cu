// CUDA twin of token_logprobs: one block per row. Forward: each thread keeps an online (max,
// sum-exp, sum-exp * (x - max)) state over its strided share of the row, read with 16-byte loads
// once the row pointer is aligned (head and tail elements scalar); states merge by warp shuffles,
// then across warps in shared memory. bf16/fp16 are read natively, all math in fp32.
// Backward: p = exp(x - lse) recomputed per element, grad = g * (onehot - p) - ge * p * (log p + H).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "cuda_kernels.h"

namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;

template <typename T> __device__ __forceinline__ float to_f(T x);
template <> __device__ __forceinline__ float to_f<float>(float x) { return x; }
template <> __device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
template <> __device__ __forceinline__ float to_f<__half>(__half x) { return __half2float(x); }

template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16(x); }
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half(x); }

struct State {
  float m;  // running max
  float s;  // sum exp(x - m)
  float w;  // sum exp(x - m) * (x - m)
};

// Rescales `st` to a new max `m` (m >= st.m).
template <bool kEntropy>
__device__ __forceinline__ void rescale(State& st, float m) {
  if (st.s > 0.0f) {
    const float d = st.m - m;
    const float c = __expf(d);
    if (kEntropy) st.w = c * (st.w + d * st.s);
    st.s *= c;
  }
  st.m = m;
}

// Adds n values: one max per chunk, so the rescale costs one exp per chunk, not per element.
// Without the entropy only the sum is kept (bf16 rows are compute-bound: every op counts).
template <bool kEntropy, int N>
__device__ __forceinline__ void add_chunk(State& st, const float (&v)[N]) {
  float cm = v[0];
#pragma unroll
  for (int j = 1; j < N; ++j) cm = fmaxf(cm, v[j]);
  if (cm > st.m) rescale<kEntropy>(st, cm);
  if (st.m == -INFINITY) return;  // everything so far is -inf
#pragma unroll
  for (int j = 0; j < N; ++j) {
    const float d = v[j] - st.m;
    const float e = __expf(d);
    st.s += e;
    if (kEntropy) st.w += e > 0.0f ? e * d : 0.0f;  // -inf logits: 0, not 0 * -inf
  }
}

__device__ __forceinline__ State merge(const State& a, const State& b) {
  State r{fmaxf(a.m, b.m), 0.0f, 0.0f};
  if (r.m == -INFINITY) return r;
  if (a.s > 0.0f) {
    const float d = a.m - r.m, c = __expf(d);
    r.s += c * a.s;
    r.w += c * (a.w + d * a.s);
  }
  if (b.s > 0.0f) {
    const float d = b.m - r.m, c = __expf(d);
    r.s += c * b.s;
    r.w += c * (b.w + d * b.s);
  }
  return r;
}

template <typename T>
__device__ __forceinline__ int64_t head_len(const T* p, int64_t vocab) {
  constexpr int kVec = 16 / sizeof(T);
  const int mis = static_cast<int>((reinterpret_cast<uintptr_t>(p) / sizeof(T)) % kVec);
  const int64_t head = (kVec - mis) % kVec;
  return head < vocab ? head : vocab;
}

template <typename T>
__device__ __forceinline__ const T* row_ptr(const T* base, int64_t r, int64_t d1, int64_t s0, int64_t s1) {
  return base + (r / d1) * s0 + (r % d1) * s1;
}

template <typename T, bool kEntropy>
__global__ void __launch_bounds__(kThreads) fwd_kernel(const T* __restrict__ logits, int64_t rows, int64_t d1,
                                                       int64_t s0, int64_t s1, int64_t vocab,
                                                       const int64_t* __restrict__ targets, float* __restrict__ lp,
                                                       float* __restrict__ ent, float* __restrict__ lse_out) {
  constexpr int kVec = 16 / sizeof(T);
  __shared__ State warp_states[kWarps];
  const int tid = threadIdx.x;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* row = row_ptr(logits, r, d1, s0, s1);
    const int64_t head = head_len(row, vocab);
    const int64_t nvec = (vocab - head) / kVec;
    State st{-INFINITY, 0.0f, 0.0f};
    if (tid < head) {
      const float v[1] = {to_f(row[tid])};
      add_chunk<kEntropy, 1>(st, v);
    }
    const uint4* vrow = reinterpret_cast<const uint4*>(row + head);
    for (int64_t i = tid; i < nvec; i += kThreads) {
      const uint4 u = __ldg(vrow + i);
      const T* e = reinterpret_cast<const T*>(&u);
      float v[kVec];
#pragma unroll
      for (int j = 0; j < kVec; ++j) v[j] = to_f(e[j]);
      add_chunk<kEntropy, kVec>(st, v);
    }
    for (int64_t i = head + nvec * kVec + tid; i < vocab; i += kThreads) {
      const float v[1] = {to_f(row[i])};
      add_chunk<kEntropy, 1>(st, v);
    }
    // Block reduction of the states.
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      State o{__shfl_xor_sync(0xffffffffu, st.m, off), __shfl_xor_sync(0xffffffffu, st.s, off),
              __shfl_xor_sync(0xffffffffu, st.w, off)};
      st = merge(st, o);
    }
    if ((tid & 31) == 0) warp_states[tid >> 5] = st;
    __syncthreads();
    if (tid < 32) {
      st = tid < kWarps ? warp_states[tid] : State{-INFINITY, 0.0f, 0.0f};
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) {
        State o{__shfl_xor_sync(0xffffffffu, st.m, off), __shfl_xor_sync(0xffffffffu, st.s, off),
                __shfl_xor_sync(0xffffffffu, st.w, off)};
        st = merge(st, o);
      }
      if (tid == 0) {
        const float log_s = logf(st.s);
        const float lse = st.m + log_s;
        const int64_t t = targets[r];
        lse_out[r] = lse;
        lp[r] = (t >= 0 && t < vocab) ? to_f(row[t]) - lse : NAN;  // bad ids: NaN (no host sync to check)
        if (kEntropy) ent[r] = log_s - st.w / st.s;
      }
    }
    __syncthreads();  // warp_states is reused by the next row
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) bwd_kernel(const T* __restrict__ logits, int64_t rows, int64_t d1,
                                                       int64_t s0, int64_t s1, int64_t vocab,
                                                       const int64_t* __restrict__ targets,
                                                       const float* __restrict__ lse_in, const float* __restrict__ ent,
                                                       const float* __restrict__ g_lp, const float* __restrict__ g_ent,
                                                       T* __restrict__ out) {
  constexpr int kVec = 16 / sizeof(T);
  const int tid = threadIdx.x;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* row = row_ptr(logits, r, d1, s0, s1);
    T* orow = out + r * vocab;
    const float lse = lse_in[r];
    const float g = g_lp ? g_lp[r] : 0.0f;
    const float ge = g_ent ? g_ent[r] : 0.0f;
    const float shift = g_ent ? ent[r] - lse : 0.0f;  // log p + H = x - lse + H
    const int64_t t = targets[r];
    auto grad = [&](float x, int64_t i) {
      const float p = __expf(x - lse);
      const float gr = p > 0.0f ? -p * (g + ge * (x + shift)) : 0.0f;  // -inf logits: 0, not 0 * -inf
      return i == t ? gr + g : gr;
    };
    const int64_t head = head_len(row, vocab);
    if (head == head_len(orow, vocab)) {  // same alignment: 16-byte loads and stores
      const int64_t nvec = (vocab - head) / kVec;
      if (tid < head) orow[tid] = from_f<T>(grad(to_f(row[tid]), tid));
      const uint4* vin = reinterpret_cast<const uint4*>(row + head);
      uint4* vout = reinterpret_cast<uint4*>(orow + head);
      for (int64_t i = tid; i < nvec; i += kThreads) {
        const uint4 u = __ldg(vin + i);
        const T* e = reinterpret_cast<const T*>(&u);
        uint4 o;
        T* oe = reinterpret_cast<T*>(&o);
#pragma unroll
        for (int j = 0; j < kVec; ++j) oe[j] = from_f<T>(grad(to_f(e[j]), head + i * kVec + j));
        vout[i] = o;
      }
      for (int64_t i = head + nvec * kVec + tid; i < vocab; i += kThreads) orow[i] = from_f<T>(grad(to_f(row[i]), i));
    } else {
      for (int64_t i = tid; i < vocab; i += kThreads) orow[i] = from_f<T>(grad(to_f(row[i]), i));
    }
  }
}

unsigned grid_for(int64_t rows) {
  const int64_t cap = 1 << 30;
  return static_cast<unsigned>(rows < cap ? (rows > 0 ? rows : 1) : cap);
}

}  // namespace

template <typename T>
void launch_fwd(const void* logits, int64_t rows, int64_t d1, int64_t s0, int64_t s1, int64_t vocab,
                const int64_t* targets, float* logprobs, float* entropy, float* lse, cudaStream_t st) {
  const T* x = static_cast<const T*>(logits);
  if (entropy)
    fwd_kernel<T, true><<<grid_for(rows), kThreads, 0, st>>>(x, rows, d1, s0, s1, vocab, targets, logprobs, entropy, lse);
  else
    fwd_kernel<T, false><<<grid_for(rows), kThreads, 0, st>>>(x, rows, d1, s0, s1, vocab, targets, logprobs, nullptr,
                                                             lse);
}

extern "C" int rarlhf_cuda_token_logprobs_fwd(const void* logits, int dtype, int64_t d0, int64_t d1, int64_t s0,
                                              int64_t s1, int64_t vocab, const int64_t* targets, float* logprobs,
                                              float* entropy, float* lse, void* stream) {
  const int64_t rows = d0 * d1;
  if (rows == 0) return 0;
  auto st = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case RARLHF_F32: launch_fwd<float>(logits, rows, d1, s0, s1, vocab, targets, logprobs, entropy, lse, st); break;
    case RARLHF_BF16:
      launch_fwd<__nv_bfloat16>(logits, rows, d1, s0, s1, vocab, targets, logprobs, entropy, lse, st);
      break;
    case RARLHF_F16: launch_fwd<__half>(logits, rows, d1, s0, s1, vocab, targets, logprobs, entropy, lse, st); break;
    default: return static_cast<int>(cudaErrorInvalidValue);
  }
  return static_cast<int>(cudaGetLastError());
}

extern "C" int rarlhf_cuda_token_logprobs_bwd(const void* logits, int dtype, int64_t d0, int64_t d1, int64_t s0,
                                              int64_t s1, int64_t vocab, const int64_t* targets, const float* lse,
                                              const float* entropy, const float* grad_lp, const float* grad_ent,
                                              void* grad_logits, void* stream) {
  const int64_t rows = d0 * d1;
  if (rows == 0) return 0;
  auto st = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case RARLHF_F32:
      bwd_kernel<float><<<grid_for(rows), kThreads, 0, st>>>(static_cast<const float*>(logits), rows, d1, s0, s1,
                                                             vocab, targets, lse, entropy, grad_lp, grad_ent,
                                                             static_cast<float*>(grad_logits));
      break;
    case RARLHF_BF16:
      bwd_kernel<__nv_bfloat16><<<grid_for(rows), kThreads, 0, st>>>(
          static_cast<const __nv_bfloat16*>(logits), rows, d1, s0, s1, vocab, targets, lse, entropy, grad_lp, grad_ent,
          static_cast<__nv_bfloat16*>(grad_logits));
      break;
    case RARLHF_F16:
      bwd_kernel<__half><<<grid_for(rows), kThreads, 0, st>>>(static_cast<const __half*>(logits), rows, d1, s0, s1,
                                                              vocab, targets, lse, entropy, grad_lp, grad_ent,
                                                              static_cast<__half*>(grad_logits));
      break;
    default:
      return static_cast<int>(cudaErrorInvalidValue);
  }
  return static_cast<int>(cudaGetLastError());
}

extern "C" const char* rarlhf_cuda_error_string(int code) {
  return cudaGetErrorString(static_cast<cudaError_t>(code));
}
