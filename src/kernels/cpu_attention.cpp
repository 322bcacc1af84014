// cpu_attention: softmax(q k^T * scale + mask) v for a decoding step on the CPU, one pass per query
// row straight from the KV cache. Why not ATen: a step has one query row per head, and LibTorch 1.13
// (no scaled_dot_product_attention) either calls one tiny BLAS GEMM per (batch, head) or, as
// blocks.cpp did, materialises [B, Hkv, rows, S, D] broadcast products twice per layer (~11 MB per
// layer at B=8, S=112 for SmolLM2: more memory traffic than the layer's weights). Here the scores of
// a row live in a thread-local buffer of S floats, K/V rows are read once per query head group while
// they sit in L2, and the output is written in [B, T, H, D] order so the caller's merge of the heads
// is a view. Each row is computed by one thread in a fixed order: results do not depend on the
// thread count.
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "cpu_avx2_math.h"
#include "rarlhf/kernels/ops.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RARLHF_CPU_ATTENTION_X86 1
#include <immintrin.h>
#else
#define RARLHF_CPU_ATTENTION_X86 0
#endif

namespace rarlhf {
namespace {

#if RARLHF_CPU_ATTENTION_X86
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
namespace avx2 {

inline float dot(const float* a, const float* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  if (i + 8 <= n) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    i += 8;
  }
  float r = avx2_math::hsum(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) r += a[i] * b[i];
  return r;
}

// y += a * x
inline void axpy(float a, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

// The dot products of q [D] with 8 rows k, k + ldk, ... (D a multiple of 8), as one vector.
inline __m256 dots8(const float* q, const float* k, int64_t ldk, int64_t D) {
  __m256 a[8];
  for (int j = 0; j < 8; ++j) a[j] = _mm256_setzero_ps();
  for (int64_t d = 0; d < D; d += 8) {
    const __m256 qv = _mm256_loadu_ps(q + d);
    for (int j = 0; j < 8; ++j) a[j] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + j * ldk + d), a[j]);
  }
  const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);  // [j0..3 low | j0..3 high], [j4..7 ...]
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// o[0, 8 * NV) = inv * sum_s p[s] * v[s * ldv + ...], accumulated in registers over s.
template <int NV>
inline void weighted_rows(const float* p, const float* v, int64_t ldv, int64_t S, float inv, float* o) {
  __m256 acc[NV];
  for (int i = 0; i < NV; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t s = 0; s < S; ++s) {
    if (p[s] == 0.0f) continue;  // masked positions (e^-inf)
    const __m256 ps = _mm256_set1_ps(p[s]);
    const float* vr = v + s * ldv;
    for (int i = 0; i < NV; ++i) acc[i] = _mm256_fmadd_ps(ps, _mm256_loadu_ps(vr + 8 * i), acc[i]);
  }
  const __m256 vi = _mm256_set1_ps(inv);
  for (int i = 0; i < NV; ++i) _mm256_storeu_ps(o + 8 * i, _mm256_mul_ps(acc[i], vi));
}

struct Views {
  const float *q, *k, *v;
  const bool* allowed;  // nullptr: every position visible
  float* out;
  int64_t B, H, Hkv, T, S, D;
  int64_t qs[3], ks[3], vs[3], as[4];  // strides of the leading dims (the last of q/k/v is 1)
  float scale;
};

// One (batch row, K/V head): its n_rep query heads x T rows.
void group(const Views& w, int64_t b, int64_t g, std::vector<float>& p) {
  const int64_t n_rep = w.H / w.Hkv;
  const float* kb = w.k + b * w.ks[0] + g * w.ks[1];
  const float* vb = w.v + b * w.vs[0] + g * w.vs[1];
  constexpr float kLowest = std::numeric_limits<float>::lowest();
  for (int64_t r = 0; r < n_rep; ++r) {
    const int64_t h = g * n_rep + r;
    for (int64_t t = 0; t < w.T; ++t) {
      const float* qr = w.q + b * w.qs[0] + h * w.qs[1] + t * w.qs[2];
      const bool* ar = w.allowed ? w.allowed + b * w.as[0] + t * w.as[2] : nullptr;
      float m = kLowest;
      int64_t s0 = 0;
      if (w.D % 8 == 0) {  // 8 positions at a time: 8 lane-wise partial dots, then one transpose-add
        const __m256 vscale = _mm256_set1_ps(w.scale);
        __m256 vmax = _mm256_set1_ps(kLowest);
        for (; s0 + 8 <= w.S; s0 += 8) {
          const __m256 x = _mm256_mul_ps(dots8(qr, kb + s0 * w.ks[2], w.ks[2], w.D), vscale);
          _mm256_storeu_ps(p.data() + s0, x);
          vmax = _mm256_max_ps(vmax, x);
        }
        m = avx2_math::hmax(vmax);
      }
      for (int64_t s = s0; s < w.S; ++s) {
        const float x = dot(qr, kb + s * w.ks[2], w.D) * w.scale;
        p[s] = x;
        m = std::max(m, x);
      }
      if (ar) {
        // A masked score is the lowest float, as blocks.cpp's masked_fill: a row with every
        // position masked becomes uniform, as the ATen softmax makes it.
        m = kLowest;
        for (int64_t s = 0; s < w.S; ++s) {
          if (!ar[s * w.as[3]]) p[s] = kLowest;
          m = std::max(m, p[s]);
        }
      }
      __m256 vsum = _mm256_setzero_ps();
      const __m256 vm = _mm256_set1_ps(m);
      int64_t s = 0;
      for (; s + 8 <= w.S; s += 8) {
        const __m256 e = avx2_math::exp(_mm256_sub_ps(_mm256_loadu_ps(p.data() + s), vm));
        _mm256_storeu_ps(p.data() + s, e);
        vsum = _mm256_add_ps(vsum, e);
      }
      float sum = avx2_math::hsum(vsum);
      for (; s < w.S; ++s) {
        p[s] = std::exp(p[s] - m);
        sum += p[s];
      }
      float* o = w.out + ((b * w.T + t) * w.H + h) * w.D;
      const float inv = 1.0f / sum;
      int64_t d0 = 0;
      for (; d0 + 64 <= w.D; d0 += 64) weighted_rows<8>(p.data(), vb + d0, w.vs[2], w.S, inv, o + d0);
      for (; d0 + 8 <= w.D; d0 += 8) weighted_rows<1>(p.data(), vb + d0, w.vs[2], w.S, inv, o + d0);
      if (d0 < w.D) {
        std::fill(o + d0, o + w.D, 0.0f);
        for (int64_t s = 0; s < w.S; ++s) axpy(p[s], vb + s * w.vs[2] + d0, o + d0, w.D - d0);
        for (int64_t d = d0; d < w.D; ++d) o[d] *= inv;
      }
    }
  }
}

}  // namespace avx2
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif  // RARLHF_CPU_ATTENTION_X86

}  // namespace

bool cpu_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
#if RARLHF_CPU_ATTENTION_X86
  if (cpu_linear_isa() == CpuLinearIsa::kReference) return false;  // RARLHF_CPU_LINEAR=off: ATen only
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return false;
  for (const at::Tensor* t : {&q, &k, &v}) {
    if (!t->device().is_cpu() || t->scalar_type() != at::kFloat || t->dim() != 4) return false;
  }
  return !(at::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad()));
#else
  (void)q;
  (void)k;
  (void)v;
  return false;
#endif
}

at::Tensor cpu_attention(const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in,
                         const at::Tensor& allowed_in, double scale) {
  TORCH_CHECK(cpu_attention_applies(q_in, k_in, v_in), "cpu_attention: q, k, v must be 4-D float32 CPU tensors "
              "needing no gradient, on a CPU with AVX2 and FMA");
  const int64_t B = q_in.size(0), H = q_in.size(1), T = q_in.size(2), D = q_in.size(3);
  const int64_t Hkv = k_in.size(1), S = k_in.size(2);
  TORCH_CHECK(k_in.size(0) == B && v_in.size(0) == B && v_in.size(1) == Hkv && v_in.size(2) == S &&
                  k_in.size(3) == D && v_in.size(3) == D,
              "cpu_attention: q ", q_in.sizes(), ", k ", k_in.sizes(), " and v ", v_in.sizes(), " do not match");
  TORCH_CHECK(S > 0, "cpu_attention: no key/value positions");
  TORCH_CHECK(Hkv > 0 && H % Hkv == 0, "cpu_attention: ", H, " query heads are not a multiple of ", Hkv,
              " key/value heads");
  at::Tensor allowed = allowed_in;
  if (allowed.defined()) {
    TORCH_CHECK(allowed.scalar_type() == at::kBool && allowed.dim() == 4 &&
                    (allowed.size(0) == 1 || allowed.size(0) == B) && allowed.size(1) == 1 &&
                    allowed.size(2) == T && allowed.size(3) == S,
                "cpu_attention: allowed must be bool [B|1, 1, T, S] = [", B, ", 1, ", T, ", ", S, "], got ",
                allowed.sizes());
  }
  const at::Tensor q = q_in.stride(3) == 1 ? q_in : q_in.contiguous();
  const at::Tensor k = k_in.stride(3) == 1 ? k_in : k_in.contiguous();
  const at::Tensor v = v_in.stride(3) == 1 ? v_in : v_in.contiguous();
  at::Tensor out = at::empty({B, T, H, D}, q.options());
#if RARLHF_CPU_ATTENTION_X86
  avx2::Views w{};
  w.q = q.data_ptr<float>();
  w.k = k.data_ptr<float>();
  w.v = v.data_ptr<float>();
  w.allowed = allowed.defined() ? allowed.data_ptr<bool>() : nullptr;
  w.out = out.data_ptr<float>();
  w.B = B, w.H = H, w.Hkv = Hkv, w.T = T, w.S = S, w.D = D;
  for (int i = 0; i < 3; ++i) {
    w.qs[i] = q.stride(i);
    w.ks[i] = k.stride(i);
    w.vs[i] = v.stride(i);
  }
  if (allowed.defined()) {
    for (int i = 0; i < 4; ++i) w.as[i] = allowed.size(i) == 1 ? 0 : allowed.stride(i);
  }
  w.scale = static_cast<float>(scale);
  if (B * T * H * D > 0) {
    at::parallel_for(0, B * Hkv, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> p(static_cast<size_t>(S));
      for (int64_t i = begin; i < end; ++i) avx2::group(w, i / Hkv, i % Hkv, p);
    });
  }
#endif
  return out.transpose(1, 2);
}

}  // namespace rarlhf
