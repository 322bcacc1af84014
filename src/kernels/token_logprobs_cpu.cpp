// CPU twin of token_logprobs: one pass per row with a blockwise online max / sum-exp (each block of
// kBlock logits is read once from memory; its max and exps run from L1), rows in parallel with
// at::parallel_for. Never materialises a [N, V] log-softmax: the forward keeps lse (and entropy) per
// row, the backward recomputes softmax row by row. Inner loops use GCC/Clang vector extensions;
// the row functions get an AVX2/FMA clone picked at load time.
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels_internal.h"

// Helpers are force-inlined into each instruction-set variant of the row functions below, so
// they are compiled for that variant (an AVX2+FMA one on x86-64, chosen at run time).
#define RARLHF_INLINE inline __attribute__((always_inline))
#if defined(__x86_64__)
#define RARLHF_HAVE_AVX2_VARIANT 1
#define RARLHF_AVX2 __attribute__((target("avx2,fma")))
#else
#define RARLHF_HAVE_AVX2_VARIANT 0
#endif

namespace rarlhf::kernels_detail {
namespace {

// 8 fp32 lanes in GCC/Clang vector extensions: one AVX2 register in the haswell clone, two SSE
// registers in the default one. Written out explicitly because GCC does not vectorise the scalar
// form of these reductions (float max/sum are not associative) without -ffast-math.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"  // 32-byte vectors stay inside this file (all inlined)
#endif
typedef float VecF __attribute__((vector_size(32)));
typedef int32_t VecI __attribute__((vector_size(32)));
constexpr int kLanes = 8;
constexpr int64_t kBlock = 2048;     // logits per online-max block (8 KB of fp32, stays in L1)
constexpr float kExpFloor = -87.0f;  // exp below this is < 1.7e-38: treated as 0

RARLHF_INLINE VecF splat(float v) { return VecF{v, v, v, v, v, v, v, v}; }
RARLHF_INLINE VecF load(const float* p) {
  VecF v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
RARLHF_INLINE void store(float* p, VecF v) { std::memcpy(p, &v, sizeof(v)); }

// exp(x) for x <= ~0 (arguments are x - max). x = n*ln2 + r with |r| <= ln2/2, e^r by a degree-7
// Taylor polynomial (truncation error < 1e-8 relative), 2^n by building the exponent bits; the
// round-to-nearest uses the 1.5*2^23 trick. Lanes below kExpFloor give exactly 0.
RARLHF_INLINE VecF exp_nonpos(VecF x) {
  const VecI under = x < splat(kExpFloor);
  x = under ? splat(kExpFloor) : x;
  const VecF t = x * splat(1.44269504088896341f);  // log2(e)
  const VecF n = (t + splat(12582912.0f)) - splat(12582912.0f);
  const VecF r = (x - n * splat(0.693145751953125f)) - n * splat(1.428606820309417e-06f);  // ln2 hi + lo
  VecF p = splat(1.0f / 5040.0f);
  p = p * r + splat(1.0f / 720.0f);
  p = p * r + splat(1.0f / 120.0f);
  p = p * r + splat(1.0f / 24.0f);
  p = p * r + splat(1.0f / 6.0f);
  p = p * r + splat(0.5f);
  p = p * r + splat(1.0f);
  p = p * r + splat(1.0f);
  const VecI bits = (__builtin_convertvector(n, VecI) + 127) << 23;
  VecF scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return under ? splat(0.0f) : p * scale;
}
RARLHF_INLINE float exp_nonpos(float x) {
  float lanes[kLanes] = {x};
  store(lanes, exp_nonpos(load(lanes)));
  return lanes[0];
}

RARLHF_INLINE float hsum(VecF v) {
  float s = 0.0f;
  for (int j = 0; j < kLanes; ++j) s += v[j];
  return s;
}

struct RowStats {
  float max = -std::numeric_limits<float>::infinity();
  float sum = 0.0f;   // sum exp(x - max)
  float wsum = 0.0f;  // sum exp(x - max) * (x - max), for the entropy
};

RARLHF_INLINE float block_max(const float* x, int64_t len) {
  VecF a = splat(-std::numeric_limits<float>::infinity()), b = a;
  int64_t i = 0;
  for (; i + 2 * kLanes <= len; i += 2 * kLanes) {
    const VecF u = load(x + i), v = load(x + i + kLanes);
    a = u > a ? u : a;
    b = v > b ? v : b;
  }
  a = b > a ? b : a;
  float m = a[0];
  for (int j = 1; j < kLanes; ++j) m = a[j] > m ? a[j] : m;
  for (; i < len; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// Adds exp(x - m) (and exp(x - m) * (x - m) when kEntropy) over a block.
template <bool kEntropy>
RARLHF_INLINE void block_sum(const float* x, int64_t len, float m, float& sum, float& wsum) {
  const VecF mv = splat(m), floor_v = splat(kExpFloor);
  VecF s = splat(0.0f), w = splat(0.0f);
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes) {
    VecF d = load(x + i) - mv;
    d = d < floor_v ? floor_v : d;  // -inf logits: e = 0 and e * d = 0, never 0 * -inf
    const VecF e = exp_nonpos(d);
    s += e;
    if (kEntropy) w += e * d;
  }
  float ss = hsum(s), ws = hsum(w);
  for (; i < len; ++i) {
    const float d = std::max(x[i] - m, kExpFloor);
    const float e = exp_nonpos(d);
    ss += e;
    if (kEntropy) ws += e * d;
  }
  sum += ss;
  if (kEntropy) wsum += ws;
}

template <bool kEntropy>
RARLHF_INLINE RowStats row_stats_body(const float* x, int64_t vocab) {
  RowStats st;
  for (int64_t b = 0; b < vocab; b += kBlock) {
    const int64_t len = std::min(kBlock, vocab - b);
    const float bm = block_max(x + b, len);
    if (bm > st.max) {  // rescale what was summed against the old max
      if (st.sum > 0.0f) {
        const float d = st.max - bm;
        const float c = std::exp(d);
        if (kEntropy) st.wsum = c * (st.wsum + d * st.sum);
        st.sum *= c;
      }
      st.max = bm;
    }
    if (st.max == -std::numeric_limits<float>::infinity()) continue;  // all -inf so far
    block_sum<kEntropy>(x + b, len, st.max, st.sum, st.wsum);
  }
  return st;
}

// grad[v] = -p_v * (g + ge * (x_v - lse + H)), p_v = exp(x_v - lse); the one-hot term is added by
// the caller. Entries with p = 0 (-inf logits) get exactly 0, not 0 * -inf.
template <bool kEntropy>
RARLHF_INLINE void row_grad_body(const float* x, int64_t vocab, float lse, float g, float ge, float h, float* out) {
  const VecF lse_v = splat(lse), g_v = splat(g), ge_v = splat(ge), shift_v = splat(h - lse), zero = splat(0.0f);
  int64_t i = 0;
  for (; i + kLanes <= vocab; i += kLanes) {
    const VecF xv = load(x + i);
    const VecF p = exp_nonpos(xv - lse_v);
    const VecF v = kEntropy ? -p * (g_v + ge_v * (xv + shift_v)) : -p * g_v;
    store(out + i, p > zero ? v : zero);
  }
  for (; i < vocab; ++i) {
    const float p = exp_nonpos(x[i] - lse);
    const float v = kEntropy ? -p * (g + ge * (x[i] + h - lse)) : -p * g;
    out[i] = p > 0.0f ? v : 0.0f;
  }
}

// Instruction-set variants and the run-time choice between them.
template <bool kEntropy>
RowStats row_stats_base(const float* x, int64_t vocab) {
  return row_stats_body<kEntropy>(x, vocab);
}
template <bool kEntropy>
void row_grad_base(const float* x, int64_t vocab, float lse, float g, float ge, float h, float* out) {
  row_grad_body<kEntropy>(x, vocab, lse, g, ge, h, out);
}
#if RARLHF_HAVE_AVX2_VARIANT
template <bool kEntropy>
RARLHF_AVX2 RowStats row_stats_avx2(const float* x, int64_t vocab) {
  return row_stats_body<kEntropy>(x, vocab);
}
template <bool kEntropy>
RARLHF_AVX2 void row_grad_avx2(const float* x, int64_t vocab, float lse, float g, float ge, float h, float* out) {
  row_grad_body<kEntropy>(x, vocab, lse, g, ge, h, out);
}
bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#endif

template <bool kEntropy>
RowStats row_stats(const float* x, int64_t vocab) {
#if RARLHF_HAVE_AVX2_VARIANT
  if (cpu_has_avx2()) return row_stats_avx2<kEntropy>(x, vocab);
#endif
  return row_stats_base<kEntropy>(x, vocab);
}
template <bool kEntropy>
void row_grad(const float* x, int64_t vocab, float lse, float g, float ge, float h, float* out) {
#if RARLHF_HAVE_AVX2_VARIANT
  if (cpu_has_avx2()) return row_grad_avx2<kEntropy>(x, vocab, lse, g, ge, h, out);
#endif
  row_grad_base<kEntropy>(x, vocab, lse, g, ge, h, out);
}

// A row as fp32: the pointer itself for fp32, else converted into `scratch`.
template <typename T>
const float* row_as_float(const T* row, int64_t vocab, std::vector<float>& scratch) {
  if constexpr (std::is_same_v<T, float>) {
    return row;
  } else {
    scratch.resize(static_cast<size_t>(vocab));
    for (int64_t i = 0; i < vocab; ++i) scratch[i] = static_cast<float>(row[i]);
    return scratch.data();
  }
}

int64_t grain_for(int64_t vocab) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(vocab, 1)); }

template <typename T>
void fwd_impl(const RowView& rv, const int64_t* tg, float* lp, float* ent, float* lse) {
  const T* base = rv.base.data_ptr<T>();
  const int64_t vocab = rv.vocab;
  at::parallel_for(0, rv.rows(), grain_for(vocab), [&](int64_t begin, int64_t end) {
    std::vector<float> scratch;
    for (int64_t r = begin; r < end; ++r) {
      const float* x = row_as_float(base + rv.offset(r), vocab, scratch);
      const RowStats st = ent ? row_stats<true>(x, vocab) : row_stats<false>(x, vocab);
      const float log_sum = std::log(st.sum);
      lse[r] = st.max + log_sum;
      lp[r] = x[tg[r]] - lse[r];
      if (ent) ent[r] = log_sum - st.wsum / st.sum;
    }
  });
}

template <typename T>
void bwd_impl(const RowView& rv, const int64_t* tg, const float* lse, const float* ent, const float* g_lp,
              const float* g_ent, T* out) {
  const T* base = rv.base.data_ptr<T>();
  const int64_t vocab = rv.vocab;
  at::parallel_for(0, rv.rows(), grain_for(vocab), [&](int64_t begin, int64_t end) {
    std::vector<float> scratch, grad;
    for (int64_t r = begin; r < end; ++r) {
      const float* x = row_as_float(base + rv.offset(r), vocab, scratch);
      float* o = nullptr;
      if constexpr (std::is_same_v<T, float>) {
        o = out + r * vocab;
      } else {
        grad.resize(static_cast<size_t>(vocab));
        o = grad.data();
      }
      const float g = g_lp ? g_lp[r] : 0.0f;
      if (g_ent)
        row_grad<true>(x, vocab, lse[r], g, g_ent[r], ent[r], o);
      else
        row_grad<false>(x, vocab, lse[r], g, 0.0f, 0.0f, o);
      o[tg[r]] += g;
      if constexpr (!std::is_same_v<T, float>) {
        T* dst = out + r * vocab;
        for (int64_t i = 0; i < vocab; ++i) dst[i] = static_cast<T>(o[i]);
      }
    }
  });
}

}  // namespace

TokenLogprobsOut token_logprobs_fwd_cpu(const RowView& rv, const at::Tensor& targets, bool with_entropy) {
  const auto opts = rv.base.options().dtype(at::kFloat);
  TokenLogprobsOut out;
  out.logprobs = at::empty({rv.rows()}, opts);
  out.lse = at::empty({rv.rows()}, opts);
  if (with_entropy) out.entropy = at::empty({rv.rows()}, opts);
  const int64_t* tg = targets.data_ptr<int64_t>();
  float* ent = with_entropy ? out.entropy.data_ptr<float>() : nullptr;
  float* lp = out.logprobs.data_ptr<float>();
  float* lse = out.lse.data_ptr<float>();
  switch (rv.base.scalar_type()) {
    case at::kFloat: fwd_impl<float>(rv, tg, lp, ent, lse); break;
    case at::kBFloat16: fwd_impl<c10::BFloat16>(rv, tg, lp, ent, lse); break;
    case at::kHalf: fwd_impl<c10::Half>(rv, tg, lp, ent, lse); break;
    default: TORCH_CHECK(false, "token_logprobs: unsupported logits dtype ", rv.base.scalar_type());
  }
  return out;
}

at::Tensor token_logprobs_bwd_cpu(const RowView& rv, const at::Tensor& targets, const at::Tensor& lse,
                                  const at::Tensor& entropy, const at::Tensor& grad_lp, const at::Tensor& grad_ent) {
  at::Tensor out = at::empty({rv.rows(), rv.vocab}, rv.base.options());
  const int64_t* tg = targets.data_ptr<int64_t>();
  const float* l = lse.data_ptr<float>();
  const float* e = entropy.defined() ? entropy.data_ptr<float>() : nullptr;
  const float* g = grad_lp.defined() ? grad_lp.data_ptr<float>() : nullptr;
  const float* ge = grad_ent.defined() ? grad_ent.data_ptr<float>() : nullptr;
  switch (rv.base.scalar_type()) {
    case at::kFloat: bwd_impl<float>(rv, tg, l, e, g, ge, out.data_ptr<float>()); break;
    case at::kBFloat16: bwd_impl<c10::BFloat16>(rv, tg, l, e, g, ge, out.data_ptr<c10::BFloat16>()); break;
    case at::kHalf: bwd_impl<c10::Half>(rv, tg, l, e, g, ge, out.data_ptr<c10::Half>()); break;
    default: TORCH_CHECK(false, "token_logprobs: unsupported logits dtype ", rv.base.scalar_type());
  }
  return out;
}

}  // namespace rarlhf::kernels_detail
