// Batched KV-cache sampling: see include/rarlhf/generate/sampler.h. One prefill over the left-padded
// prompts, then one single-token step per new token writing into the preallocated cache. Finished
// rows keep stepping (their tokens become pad and are masked) so shapes stay static; the loop stops
// early only when every row has finished.
#include "rarlhf/generate/sampler.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "rarlhf/common/error.h"

namespace rarlhf {

namespace {

// process_logits with every id in `stops` treated as EOS.
at::Tensor filter_logits(const at::Tensor& logits, const GenerateConfig& cfg, const std::vector<int64_t>& stops,
                         bool suppress_eos) {
  TORCH_CHECK(logits.dim() == 2, "process_logits: logits must be [B, V]");
  const double neg_inf = -std::numeric_limits<double>::infinity();
  at::Tensor x = logits.to(at::kFloat);
  x = (!cfg.greedy && cfg.temperature != 1.0) ? x / cfg.temperature : x.clone();
  if (suppress_eos) {
    for (int64_t id : stops) {
      if (id >= 0 && id < x.size(1)) x.select(1, id).fill_(neg_inf);
    }
  }
  const int64_t V = x.size(1);
  if (cfg.vocab_limit > 0 && cfg.vocab_limit < V) x.narrow(1, cfg.vocab_limit, V - cfg.vocab_limit).fill_(neg_inf);
  if (cfg.top_k > 0 && cfg.top_k < V) {
    auto kth = std::get<0>(x.topk(cfg.top_k, 1)).narrow(1, cfg.top_k - 1, 1);  // [B, 1]
    x.masked_fill_(x < kth, neg_inf);
  }
  if (cfg.top_p < 1.0) {
    auto sorted = x.sort(1, /*descending=*/true);
    at::Tensor vals = std::get<0>(sorted), idx = std::get<1>(sorted);
    auto probs = at::softmax(vals, 1);
    // Drop a token when the tokens ranked above it already reach top_p (the first always stays).
    auto drop = (probs.cumsum(1) - probs) >= cfg.top_p;
    vals.masked_fill_(drop, neg_inf);
    x = at::empty_like(x).scatter_(1, idx, vals);
  }
  return x;
}

}  // namespace

at::Tensor process_logits(const at::Tensor& logits, const GenerateConfig& cfg, int64_t eos_id, bool suppress_eos) {
  return filter_logits(logits, cfg, {eos_id}, suppress_eos);
}

namespace {

// row_seeds == nullptr: one generator seeded with `seed` draws all [R, B] uniforms; otherwise
// column b comes from its own generator seeded with (*row_seeds)[b].
GenerationResult generate_impl(const CausalLm& model, const std::vector<std::vector<int64_t>>& prompts,
                               const GenerateConfig& cfg, int64_t eos_id, uint64_t seed,
                               const std::vector<uint64_t>* row_seeds, bool return_logprobs) {
  const auto& mc = model->config();
  const int64_t B = static_cast<int64_t>(prompts.size());
  const int64_t R = cfg.max_new_tokens;
  if (B == 0) throw ConfigError("generate: no prompts given");
  if (R < 1) throw ConfigError("generate.max_new_tokens: must be >= 1");
  if (!cfg.greedy && !(cfg.temperature > 0.0)) throw ConfigError("generate.temperature: must be > 0 when sampling");
  if (!(cfg.top_p > 0.0 && cfg.top_p <= 1.0)) throw ConfigError("generate.top_p: must be in (0, 1]");
  if (cfg.top_k < 0) throw ConfigError("generate.top_k: must be >= 0 (0 = off)");
  if (eos_id < 0 || eos_id >= mc.vocab_size) {
    throw ConfigError("generate: eos id " + std::to_string(eos_id) + " outside the vocabulary");
  }
  int64_t P = 0;
  for (size_t b = 0; b < prompts.size(); ++b) {
    if (prompts[b].empty()) throw ConfigError("generate: prompt " + std::to_string(b) + " has no tokens");
    for (int64_t id : prompts[b]) {
      if (id < 0 || id >= mc.vocab_size) {
        throw ConfigError("generate: prompt " + std::to_string(b) + " holds token id " + std::to_string(id) +
                          " outside the vocabulary of " + std::to_string(mc.vocab_size));
      }
    }
    P = std::max<int64_t>(P, prompts[b].size());
  }
  if (P + R > mc.n_positions) {
    throw ConfigError("generate.max_new_tokens: prompts of " + std::to_string(P) + " tokens + " + std::to_string(R) +
                      " new exceed the model's n_positions " + std::to_string(mc.n_positions) +
                      "; shorten data.prompt_tokens or max_new_tokens");
  }

  c10::NoGradGuard no_grad;
  const at::Device dev = model->device();
  // Every id that ends a response: eos_id and the model's own eos list (generation_config.json may
  // name several, e.g. end-of-text and end-of-turn).
  std::vector<int64_t> stops = {eos_id};
  for (int64_t id : mc.eos_token_ids) {
    if (id >= 0 && id < mc.vocab_size && std::find(stops.begin(), stops.end(), id) == stops.end()) stops.push_back(id);
  }
  const at::Tensor stop_ids = at::tensor(stops, at::TensorOptions().dtype(at::kLong)).to(dev);
  const auto long_opts = at::TensorOptions().dtype(at::kLong);
  GenerationResult res;
  res.stop_ids = stops;
  // [B, P] left-padded prompts: pad = eos, mask 0 on pads.
  at::Tensor qids = at::full({B, P}, eos_id, long_opts), qmask = at::zeros({B, P}, long_opts);
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = prompts[b];
    const int64_t n = static_cast<int64_t>(p.size());
    std::memcpy(qids[b].narrow(0, P - n, n).data_ptr<int64_t>(), p.data(), n * sizeof(int64_t));
    qmask[b].narrow(0, P - n, n).fill_(1);
  }
  res.query_ids = qids.to(dev);
  res.query_mask = qmask.to(dev);

  auto gen = at::detail::createCPUGenerator(seed);
  KVCache cache;
  cache.reserve(P + R);
  // Attention mask of all positions so far; pre-filled with ones for the response part.
  at::Tensor full_mask = at::cat({res.query_mask, at::ones({B, R}, long_opts.device(dev))}, 1);  // [B, P+R]
  at::Tensor hidden = model->forward_hidden(res.query_ids, full_mask.narrow(1, 0, P), {}, &cache).select(1, P - 1);

  at::Tensor resp = at::full({B, R}, eos_id, long_opts.device(dev));
  at::Tensor rmask = at::zeros({B, R}, long_opts.device(dev));
  at::Tensor rlogp = at::zeros({B, R}, at::TensorOptions().dtype(at::kFloat).device(dev));
  at::Tensor done = at::zeros({B}, at::TensorOptions().dtype(at::kBool).device(dev));
  const at::Tensor pad = at::full({B}, eos_id, long_opts.device(dev));
  // All uniforms up front ([R, B], one host-to-device copy): step t uses row t.
  at::Tensor uniforms;
  if (!cfg.greedy && row_seeds == nullptr) {
    uniforms = at::rand({R, B}, gen, at::TensorOptions().dtype(at::kDouble)).to(dev);
  } else if (!cfg.greedy) {
    std::vector<at::Tensor> cols;
    cols.reserve(B);
    for (int64_t b = 0; b < B; ++b) {
      auto g = at::detail::createCPUGenerator((*row_seeds)[b]);
      cols.push_back(at::rand({R}, g, at::TensorOptions().dtype(at::kDouble)));
    }
    uniforms = at::stack(cols, 1).to(dev);  // [R, B]
  }
  for (int64_t t = 0; t < R; ++t) {
    at::Tensor logits = model->lm_logits(hidden);  // [B, V] fp32
    at::Tensor token;
    const at::Tensor filtered = filter_logits(logits, cfg, stops, t < cfg.min_new_tokens);
    if (cfg.greedy) {
      token = filtered.argmax(1);
    } else {
      // Inverse-CDF draw: u ~ U[0,1) from the seeded CPU generator, CDF in float64 on the device.
      auto probs = at::softmax(filtered, 1).to(at::kDouble);
      auto cdf = probs.cumsum(1);                                                     // [B, V]
      auto u = uniforms.select(0, t).unsqueeze(1);                                     // [B, 1]
      token = at::searchsorted(cdf, u * cdf.narrow(1, cdf.size(1) - 1, 1), false, /*right=*/true)
                  .squeeze(1)
                  .clamp_max(cdf.size(1) - 1);
    }
    if (return_logprobs) {
      auto scaled = cfg.greedy || cfg.temperature == 1.0 ? logits : logits / cfg.temperature;
      rlogp.select(1, t).copy_(at::log_softmax(scaled, 1).gather(1, token.unsqueeze(1)).squeeze(1));
    }
    token = at::where(done, pad, token);
    rmask.select(1, t).copy_(done.logical_not());
    resp.select(1, t).copy_(token);
    done = done.logical_or(stops.size() == 1 ? token == eos_id : at::isin(token, stop_ids));
    if (t + 1 == R) break;
    // While EOS is suppressed no row can finish: skip the device sync of the early-exit check.
    if (t >= cfg.min_new_tokens && done.all().item<bool>()) break;
    hidden = model->forward_hidden(token.unsqueeze(1), full_mask.narrow(1, 0, P + t + 1), {}, &cache).select(1, 0);
  }
  res.response_ids = resp;
  res.response_mask = rmask;
  if (return_logprobs) res.response_logprobs = rlogp * rmask;
  return res;
}

}  // namespace

GenerationResult generate(const CausalLm& model, const std::vector<std::vector<int64_t>>& prompts, const GenerateConfig& cfg,
                          int64_t eos_id, uint64_t seed, bool return_logprobs) {
  return generate_impl(model, prompts, cfg, eos_id, seed, nullptr, return_logprobs);
}

GenerationResult generate(const CausalLm& model, const std::vector<std::vector<int64_t>>& prompts, const GenerateConfig& cfg,
                          int64_t eos_id, const std::vector<uint64_t>& row_seeds, bool return_logprobs) {
  if (row_seeds.size() != prompts.size()) {
    throw Error("generate: " + std::to_string(row_seeds.size()) + " row seeds for " +
                std::to_string(prompts.size()) + " prompts");
  }
  return generate_impl(model, prompts, cfg, eos_id, 0, &row_seeds, return_logprobs);
}

std::vector<std::vector<int64_t>> response_tokens(const GenerationResult& gen, bool with_stop) {
  const at::Tensor ids = gen.response_ids.to(at::kCPU).to(at::kLong).contiguous();
  const at::Tensor mask = gen.response_mask.to(at::kCPU).to(at::kLong).contiguous();
  const auto id = ids.accessor<int64_t, 2>();
  const auto m = mask.accessor<int64_t, 2>();
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(ids.size(0)));
  for (int64_t b = 0; b < ids.size(0); ++b) {
    std::vector<int64_t>& row = out[static_cast<size_t>(b)];
    for (int64_t t = 0; t < ids.size(1) && m[b][t] != 0; ++t) row.push_back(id[b][t]);
    // The mask ends at the first stop token, so only the last token can be one.
    const auto& stops = gen.stop_ids;
    if (!with_stop && !row.empty() && std::find(stops.begin(), stops.end(), row.back()) != stops.end()) {
      row.pop_back();
    }
  }
  return out;
}

}  // namespace rarlhf
