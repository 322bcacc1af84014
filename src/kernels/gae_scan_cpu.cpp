// CPU twin of gae_scan: the reverse GAE recursion as one hand loop per row (rows in parallel), i.e.
// the fused form of the T-step tensor loop that TRL writes (and that gae_scan(use_custom=false) runs).
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include "kernels_internal.h"

namespace rarlhf::kernels_detail {

std::pair<at::Tensor, at::Tensor> gae_scan_cpu(const at::Tensor& rewards, const at::Tensor& values,
                                               const at::Tensor& mask, double gamma, double lam) {
  const int64_t batch = rewards.size(0), steps = rewards.size(1);
  at::Tensor adv = at::empty({batch, steps}, rewards.options());
  at::Tensor ret = at::empty({batch, steps}, rewards.options());
  const float* r = rewards.data_ptr<float>();
  const float* v = values.data_ptr<float>();
  const float* m = mask.data_ptr<float>();
  float* a = adv.data_ptr<float>();
  float* q = ret.data_ptr<float>();
  const float g = static_cast<float>(gamma), gl = static_cast<float>(gamma * lam);
  at::parallel_for(0, batch, std::max<int64_t>(1, 4096 / std::max<int64_t>(steps, 1)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t o = b * steps;
      float last = 0.0f, next_v = 0.0f;  // A_{t+1}, masked v_{t+1}; both 0 past the end
      for (int64_t t = steps - 1; t >= 0; --t) {
        const float vt = v[o + t] * m[o + t];
        const float delta = r[o + t] * m[o + t] + g * next_v - vt;
        last = delta + gl * last;
        a[o + t] = last;
        q[o + t] = last + vt;
        next_v = vt;
      }
    }
  });
  return {adv, ret};
}

}  // namespace rarlhf::kernels_detail
