// Fused fp32 CPU kernels for inference (sampling, scoring) of the decoder families: RMSNorm, rotary
// embeddings and SwiGLU's silu(gate) * up. Why: in a decoding step each of these is a chain of 3-8
// tiny ATen ops per layer (pow, mean, add, rsqrt, mul, mul; narrow, neg, cat, mul, mul, add), and
// their dispatch and temporaries cost as much as the layer's weight reads at B=8 (SmolLM2-135M:
// ~6 ms of a ~36 ms step, bench/family_generate_bench with RARLHF_BENCH_PROFILE). Each output element
// is computed by one thread in a fixed order: results do not depend on the thread count.
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>

#include <cmath>
#include <cstdint>

#include "cpu_avx2_math.h"
#include "rarlhf/kernels/ops.h"

namespace rarlhf {
namespace {

#if RARLHF_CPU_AVX2_MATH
namespace am = avx2_math;

// Rows of C floats each thread should take at least: small products stay on the calling thread.
int64_t grain_rows(int64_t C) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1)); }

__attribute__((target("avx2,fma"))) void rms_rows(const float* x, int64_t ldx, const float* w, float* y, int64_t C,
                                                 int64_t r0, int64_t r1, float eps) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * ldx;
    float* yr = y + r * C;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= C; c += 16) {
      const __m256 a = _mm256_loadu_ps(xr + c), b = _mm256_loadu_ps(xr + c + 8);
      s0 = _mm256_fmadd_ps(a, a, s0);
      s1 = _mm256_fmadd_ps(b, b, s1);
    }
    float ss = am::hsum(_mm256_add_ps(s0, s1));
    for (; c < C; ++c) ss += xr[c] * xr[c];
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
    const __m256 vi = _mm256_set1_ps(inv);
    c = 0;
    for (; c + 8 <= C; c += 8) {
      _mm256_storeu_ps(yr + c, _mm256_mul_ps(_mm256_loadu_ps(w + c), _mm256_mul_ps(_mm256_loadu_ps(xr + c), vi)));
    }
    for (; c < C; ++c) yr[c] = w[c] * (xr[c] * inv);
  }
}

__attribute__((target("avx2,fma"))) void silu_mul_range(const float* g, const float* u, float* y, int64_t i0,
                                                       int64_t i1) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    const __m256 a = _mm256_loadu_ps(g + i);
    const __m256 e = am::exp(_mm256_sub_ps(_mm256_setzero_ps(), a));
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_div_ps(a, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
  }
  for (; i < i1; ++i) y[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}
// 0.5 x (1 + tanh(y)), y = sqrt(2/pi) (x + 0.044715 x^3), written as x / (1 + e^{-2y}) (the same
// function: 1 + tanh(y) = 2 / (1 + e^{-2y})), which does not cancel where tanh(y) is near -1;
// e^{-2y} overflowing to inf gives 0 and underflowing to 0 gives x, as the limits are.
__attribute__((target("avx2,fma"))) void gelu_tanh_range(const float* x, float* y, int64_t i0, int64_t i1) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 k0 = _mm256_set1_ps(-2.0f * 0.7978845608028654f), k1 = _mm256_set1_ps(0.044715f);
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    const __m256 a = _mm256_loadu_ps(x + i);
    const __m256 e = am::exp(_mm256_mul_ps(k0, _mm256_fmadd_ps(_mm256_mul_ps(k1, a), _mm256_mul_ps(a, a), a)));
    _mm256_storeu_ps(y + i, _mm256_div_ps(a, _mm256_add_ps(one, e)));
  }
  for (; i < i1; ++i) {
    const float a = x[i];
    y[i] = a / (1.0f + std::exp(-2.0f * 0.7978845608028654f * (a + 0.044715f * a * a * a)));
  }
}
#endif  // RARLHF_CPU_AVX2_MATH

}  // namespace

bool cpu_fused_applies(std::initializer_list<const at::Tensor*> tensors) {
#if RARLHF_CPU_AVX2_MATH
  if (cpu_linear_isa() == CpuLinearIsa::kReference) return false;  // RARLHF_CPU_LINEAR=off: ATen only
  static const bool hw = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (!hw) return false;
  const bool grad = at::GradMode::is_enabled();
  for (const at::Tensor* t : tensors) {
    if (!t->defined() || !t->device().is_cpu() || t->scalar_type() != at::kFloat) return false;
    if (grad && t->requires_grad()) return false;
  }
  return true;
#else
  (void)tensors;
  return false;
#endif
}

at::Tensor cpu_rms_norm(const at::Tensor& x_in, const at::Tensor& w_in, double eps) {
  TORCH_CHECK(cpu_fused_applies({&x_in, &w_in}), "cpu_rms_norm: x and w must be float32 CPU tensors needing no "
              "gradient, on a CPU with AVX2 and FMA");
  const int64_t C = x_in.size(-1);
  TORCH_CHECK(w_in.numel() == C, "cpu_rms_norm: w has ", w_in.numel(), " elements for rows of ", C);
  at::Tensor x = x_in.reshape({-1, C});
  if (x.stride(1) != 1) x = x.contiguous();
  const at::Tensor w = w_in.contiguous();
  const int64_t M = x.size(0);
  at::Tensor y = at::empty({M, C}, x.options());
#if RARLHF_CPU_AVX2_MATH
  const float* xp = x.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const int64_t ldx = x.stride(0);
  at::parallel_for(0, M, grain_rows(C), [&](int64_t r0, int64_t r1) {
    rms_rows(xp, ldx, wp, yp, C, r0, r1, static_cast<float>(eps));
  });
#endif
  return y.view(x_in.sizes());
}

at::Tensor cpu_silu_mul(const at::Tensor& g_in, const at::Tensor& u_in) {
  TORCH_CHECK(cpu_fused_applies({&g_in, &u_in}), "cpu_silu_mul: g and u must be float32 CPU tensors needing no "
              "gradient, on a CPU with AVX2 and FMA");
  TORCH_CHECK(g_in.sizes() == u_in.sizes(), "cpu_silu_mul: g ", g_in.sizes(), " and u ", u_in.sizes(), " differ");
  const at::Tensor g = g_in.contiguous(), u = u_in.contiguous();
  at::Tensor y = at::empty_like(g, at::MemoryFormat::Contiguous);
#if RARLHF_CPU_AVX2_MATH
  const float* gp = g.data_ptr<float>();
  const float* up = u.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, g.numel(), 16384, [&](int64_t i0, int64_t i1) { silu_mul_range(gp, up, yp, i0, i1); });
#endif
  return y;
}

at::Tensor cpu_gelu_tanh(const at::Tensor& x_in) {
  TORCH_CHECK(cpu_fused_applies({&x_in}), "cpu_gelu_tanh: x must be a float32 CPU tensor needing no gradient, on a "
              "CPU with AVX2 and FMA");
  const at::Tensor x = x_in.contiguous();
  at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
#if RARLHF_CPU_AVX2_MATH
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, x.numel(), 16384, [&](int64_t i0, int64_t i1) { gelu_tanh_range(xp, yp, i0, i1); });
#endif
  return y;
}

at::Tensor cpu_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, int64_t R, bool interleaved) {
  TORCH_CHECK(cpu_fused_applies({&x, &cos, &sin}), "cpu_rope: x, cos and sin must be float32 CPU tensors needing "
              "no gradient, on a CPU with AVX2 and FMA");
  TORCH_CHECK(x.dim() == 4, "cpu_rope: x must be [B, H, T, D], got ", x.sizes());
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), D = x.size(3);
  TORCH_CHECK(R > 0 && R % 2 == 0 && R <= D, "cpu_rope: rotary dimension ", R, " must be even and in (0, ", D, "]");
  for (const at::Tensor* t : {&cos, &sin}) {
    TORCH_CHECK(t->dim() == 4 && (t->size(0) == B || t->size(0) == 1) && t->size(1) == 1 && t->size(2) == T &&
                    t->size(3) == R,
                "cpu_rope: cos/sin must be [B|1, 1, T, ", R, "], got ", t->sizes());
  }
  const at::Tensor xc = x.stride(3) == 1 ? x : x.contiguous();
  const at::Tensor cc = cos.stride(3) == 1 ? cos : cos.contiguous();
  const at::Tensor sc = sin.stride(3) == 1 ? sin : sin.contiguous();
  at::Tensor out = at::empty({B, T, H, D}, x.options());  // the layout a linear's output has
  const float* xp = xc.data_ptr<float>();
  const float* cp = cc.data_ptr<float>();
  const float* sp = sc.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const int64_t xs0 = xc.stride(0), xs1 = xc.stride(1), xs2 = xc.stride(2);
  const int64_t cs0 = cc.size(0) == 1 ? 0 : cc.stride(0), cs2 = cc.stride(2);
  const int64_t ss0 = sc.size(0) == 1 ? 0 : sc.stride(0), ss2 = sc.stride(2);
  const int64_t half = R / 2;
  at::parallel_for(0, B * T * H, grain_rows(D), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t h = i % H, t = (i / H) % T, b = i / (H * T);
      const float* xr = xp + b * xs0 + h * xs1 + t * xs2;
      const float* c = cp + b * cs0 + t * cs2;
      const float* s = sp + b * ss0 + t * ss2;
      float* o = op + i * D;
      // As apply_rope: x * cos + turned * sin, turned = (-x[half:], x[:half]) or (-x1, x0, -x3, x2, ...).
      if (interleaved) {
        for (int64_t j = 0; j < R; j += 2) {
          o[j] = xr[j] * c[j] + (-xr[j + 1]) * s[j];
          o[j + 1] = xr[j + 1] * c[j + 1] + xr[j] * s[j + 1];
        }
      } else {
        for (int64_t j = 0; j < half; ++j) o[j] = xr[j] * c[j] + (-xr[j + half]) * s[j];
        for (int64_t j = half; j < R; ++j) o[j] = xr[j] * c[j] + xr[j - half] * s[j];
      }
      for (int64_t j = R; j < D; ++j) o[j] = xr[j];
    }
  });
  return out.permute({0, 2, 1, 3});
}

}  // namespace rarlhf
