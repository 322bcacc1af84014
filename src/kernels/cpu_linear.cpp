// cpu_linear: fp32 y = x @ w (+ bias) on the CPU for inference, with register-tiled AVX-512 and
// AVX2+FMA kernels picked at run time (cpu_linear_tiles.inc, compiled once per instruction set).
// Why not BLAS: a decoding step multiplies a handful of rows (the batch) by every weight matrix, and
// OpenBLAS's sgemm copies ("packs") its operands for each call and runs its small-M cases far below
// what the memory system allows (Debian's OpenBLAS 0.3.21 on the 2-core EPYC of DESIGN §5: ~10 GB/s of
// DRAM-resident weights for [8, 768] x [768, N]); the tiles here read each weight once per 8 rows,
// straight from the Hugging Face layouts, with no copies, at 24-28 GB/s. bench/kernels_bench.cpp
// measures both in the same run (--benchmark_filter=linear).
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <dlfcn.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "rarlhf/common/error.h"
#include "kernels_internal.h"
#include "rarlhf/kernels/ops.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RARLHF_CPU_LINEAR_X86 1
#include <immintrin.h>
#else
#define RARLHF_CPU_LINEAR_X86 0
#endif

namespace rarlhf {
namespace {

#if RARLHF_CPU_LINEAR_X86
// Prefetch distances, tuned on DRAM-resident weights (bench/kernels_bench.cpp, 16 weight copies): KN
// prefetches the weight row about kPrefetchFmas vector FMAs ahead (32 rows for an 8-row AVX-512 tile,
// 256 for one row), NK kPrefetchFloats ahead in each embedding row; both into L2, where L1-bound
// prefetches evicted the tile's own operands (4 KB-aliased weight rows).
constexpr int64_t kPrefetchFmas = 768;
constexpr int64_t kPrefetchFloats = 2048;
constexpr int64_t kPackRows = 32;  // NK with at least this many x rows: transpose e blocks, run KN tiles
constexpr int64_t kRowPanel = 32;  // x rows per panel when many rows come at once (prefill)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f")
// GCC 12's _mm512_reduce_add_ps builds on _mm256_undefined_pd, which -Wmaybe-uninitialized flags.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
namespace avx512 {
using V = __m512;
using Mask = __mmask16;
constexpr int kW = 16, kMR = 8, kNV = 3, kNR = 3;  // 8 x 3 = 24 of the 32 zmm registers accumulate
#define RARLHF_TILE_MR 8
inline V vzero() { return _mm512_setzero_ps(); }
inline V vset1(float v) { return _mm512_set1_ps(v); }
inline V vload(const float* p) { return _mm512_loadu_ps(p); }
inline V vloadm(Mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
inline void vstore(float* p, V v) { _mm512_storeu_ps(p, v); }
inline void vstorem(Mask m, float* p, V v) { _mm512_mask_storeu_ps(p, m, v); }
inline V vfma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
inline float vhsum(V v) { return _mm512_reduce_add_ps(v); }
inline Mask vmask(int64_t n) { return n <= 0 ? Mask(0) : n >= kW ? Mask(0xFFFF) : Mask((1u << n) - 1u); }
#include "cpu_linear_tiles.inc"
#undef RARLHF_TILE_MR
}  // namespace avx512
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
namespace avx2 {
using V = __m256;
using Mask = __m256i;
constexpr int kW = 8, kMR = 4, kNV = 3, kNR = 3;  // 4 x 3 = 12 of the 16 ymm registers accumulate
#define RARLHF_TILE_MR 4
inline V vzero() { return _mm256_setzero_ps(); }
inline V vset1(float v) { return _mm256_set1_ps(v); }
inline V vload(const float* p) { return _mm256_loadu_ps(p); }
inline V vloadm(Mask m, const float* p) { return _mm256_maskload_ps(p, m); }
inline void vstore(float* p, V v) { _mm256_storeu_ps(p, v); }
inline void vstorem(Mask m, float* p, V v) { _mm256_maskstore_ps(p, m, v); }
inline V vfma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
inline float vhsum(V v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}
inline Mask vmask(int64_t n) {
  const int c = int(std::max<int64_t>(0, std::min<int64_t>(n, kW)));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#include "cpu_linear_tiles.inc"
#undef RARLHF_TILE_MR
}  // namespace avx2
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif  // RARLHF_CPU_LINEAR_X86

// oneDNN's row-major sgemm (dnnl.h: dnnl_sgemm, the same C signature in oneDNN 2.x and 3.x), found in
// the process when LibTorch links libdnnl dynamically, as Debian's does; pip's LibTorch hides its copy.
// For many x rows (prefill, scoring) its JIT kernels run at 270-370 GFLOP/s on the 2 cores of the
// DESIGN machine where the tiles here and OpenBLAS reach 160-180 (bench/kernels_bench, linear/*/512/*).
// Its results did not change with the thread count on the shapes measured (1 vs 2 threads, bitwise).
using DnnlSgemm = int (*)(char, char, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
constexpr int64_t kOnednnRows = 32;  // x rows from which products go to oneDNN (decoding steps stay on the tiles)
DnnlSgemm onednn_sgemm() {
  static const DnnlSgemm fn = [] {
    const char* env = std::getenv("RARLHF_ONEDNN");
    if (env && std::string(env) == "0") return DnnlSgemm(nullptr);
    return reinterpret_cast<DnnlSgemm>(dlsym(RTLD_DEFAULT, "dnnl_sgemm"));
  }();
  return fn;
}

CpuLinearIsa detect_isa() {
#if RARLHF_CPU_LINEAR_X86
  if (__builtin_cpu_supports("avx512f")) return CpuLinearIsa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CpuLinearIsa::kAvx2;
#endif
  return CpuLinearIsa::kReference;
}

bool isa_supported(CpuLinearIsa isa) {
  const CpuLinearIsa hw = detect_isa();
  switch (isa) {
    case CpuLinearIsa::kReference: return true;
    case CpuLinearIsa::kAvx2: return hw == CpuLinearIsa::kAvx2 || hw == CpuLinearIsa::kAvx512;
    case CpuLinearIsa::kAvx512: return hw == CpuLinearIsa::kAvx512;
    case CpuLinearIsa::kBest: return true;
  }
  return false;
}

}  // namespace

const char* cpu_linear_isa_name(CpuLinearIsa isa) {
  switch (isa) {
    case CpuLinearIsa::kBest: return "best";
    case CpuLinearIsa::kAvx512: return "avx512";
    case CpuLinearIsa::kAvx2: return "avx2";
    case CpuLinearIsa::kReference: return "off";
  }
  return "?";
}

CpuLinearIsa cpu_linear_isa() {
  static const CpuLinearIsa chosen = [] {
    const CpuLinearIsa hw = detect_isa();
    const char* env = std::getenv("RARLHF_CPU_LINEAR");
    if (!env || !*env) return hw;
    const std::string v(env);
    CpuLinearIsa want;
    if (v == "off") {
      want = CpuLinearIsa::kReference;
    } else if (v == "avx2") {
      want = CpuLinearIsa::kAvx2;
    } else if (v == "avx512") {
      want = CpuLinearIsa::kAvx512;
    } else {
      throw ConfigError("RARLHF_CPU_LINEAR: unknown value '" + v + "'; use off, avx2 or avx512 (or unset it)");
    }
    if (!isa_supported(want)) {
      throw ConfigError(std::string("RARLHF_CPU_LINEAR: this CPU lacks ") + v + "; use " + cpu_linear_isa_name(hw) +
                        " or unset it");
    }
    return want;
  }();
  return chosen;
}

bool cpu_linear_applies(const at::Tensor& x, const at::Tensor& w) {
  if (cpu_linear_isa() == CpuLinearIsa::kReference) return false;
  if (!x.defined() || !w.defined() || !x.device().is_cpu() || !w.device().is_cpu()) return false;
  if (x.scalar_type() != at::kFloat || w.scalar_type() != at::kFloat || w.dim() != 2 || !w.is_contiguous()) {
    return false;
  }
  // No autograd graph: these products are for sampling and scoring under NoGradGuard.
  return !(at::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad()));
}

at::Tensor cpu_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, bool w_transposed,
                      CpuLinearIsa isa) {
  TORCH_CHECK(x.dim() >= 1 && w.dim() == 2, "cpu_linear: x must be [..., K] and w 2-D, got ", x.sizes(), " and ",
              w.sizes());
  TORCH_CHECK(x.device().is_cpu() && w.device().is_cpu() && x.scalar_type() == at::kFloat &&
                  w.scalar_type() == at::kFloat,
              "cpu_linear: x and w must be float32 CPU tensors");
  const int64_t K = x.size(-1);
  const int64_t N = w_transposed ? w.size(0) : w.size(1);
  TORCH_CHECK((w_transposed ? w.size(1) : w.size(0)) == K, "cpu_linear: x is [..., ", K, "] but w is ", w.sizes(),
              w_transposed ? " ([N, K] expected)" : " ([K, N] expected)");
  TORCH_CHECK(!bias.defined() || (bias.numel() == N && bias.scalar_type() == at::kFloat && bias.device().is_cpu()),
              "cpu_linear: bias must be float32 [", N, "]");
  const bool best = isa == CpuLinearIsa::kBest;
  if (best) isa = cpu_linear_isa();
  TORCH_CHECK(isa_supported(isa), "cpu_linear: this CPU lacks ", cpu_linear_isa_name(isa));

  auto sizes = x.sizes().vec();
  sizes.back() = N;
  at::Tensor x2 = x.reshape({-1, K});
  const int64_t M = x2.size(0);
  if (isa == CpuLinearIsa::kReference || M == 0 || K == 0) {
    at::Tensor y = w_transposed ? at::mm(x2, w.t()) : at::mm(x2, w);
    if (bias.defined()) y.add_(bias.reshape({N}));
    return y.view(sizes);
  }
  if (x2.stride(-1) != 1 || x2.stride(0) < K) x2 = x2.contiguous();
  const at::Tensor wc = w.contiguous();
  const at::Tensor bc = bias.defined() ? bias.reshape({N}).contiguous() : at::Tensor();
  at::Tensor y = at::empty({M, N}, x.options());
  if (best && M >= kOnednnRows && N > 0 && onednn_sgemm()) {
    float beta = 0.0f;
    if (bc.defined()) {
      y.copy_(bc.unsqueeze(0).expand({M, N}));  // bias first, as the tiles
      beta = 1.0f;
    }
    const int rc = onednn_sgemm()('N', w_transposed ? 'T' : 'N', M, N, K, 1.0f, x2.data_ptr<float>(), x2.stride(0),
                                  wc.data_ptr<float>(), w_transposed ? K : N, beta, y.data_ptr<float>(), N);
    TORCH_CHECK(rc == 0, "cpu_linear: oneDNN's sgemm failed with status ", rc, " (RARLHF_ONEDNN=0 avoids it)");
    return y.view(sizes);
  }
#if RARLHF_CPU_LINEAR_X86
  const float* xp = x2.data_ptr<float>();
  const float* wp = wc.data_ptr<float>();
  const float* bp = bc.defined() ? bc.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  const int64_t ldx = x2.stride(0);
  if (isa == CpuLinearIsa::kAvx512) {
    if (w_transposed) {
      avx512::nk_product(xp, M, ldx, wp, N, yp, K);
    } else {
      avx512::kn_product(xp, M, ldx, wp, N, bp, yp, K);
    }
  } else {
    if (w_transposed) {
      avx2::nk_product(xp, M, ldx, wp, N, yp, K);
    } else {
      avx2::kn_product(xp, M, ldx, wp, N, bp, yp, K);
    }
  }
  if (w_transposed && bp) y.add_(bc);
#endif
  return y.view(sizes);
}

namespace kernels_detail {
bool onednn_gemm(char ta, char tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                 int64_t ldb, float beta, float* C, int64_t ldc) {
  const DnnlSgemm fn = onednn_sgemm();
  if (!fn) return false;
  const int rc = fn(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
  TORCH_CHECK(rc == 0, "oneDNN's sgemm failed with status ", rc, " (RARLHF_ONEDNN=0 avoids it)");
  return true;
}
}  // namespace kernels_detail

bool cpu_linear_uses_onednn() { return cpu_linear_isa() != CpuLinearIsa::kReference && onednn_sgemm() != nullptr; }

int cpu_kernel_threads() {
  std::mutex mu;
  std::set<std::thread::id> seen;
  at::parallel_for(0, 64, 1, [&](int64_t, int64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // so one thread cannot take every chunk
    std::lock_guard<std::mutex> lock(mu);
    seen.insert(std::this_thread::get_id());
  });
  return static_cast<int>(seen.size());
}

}  // namespace rarlhf
