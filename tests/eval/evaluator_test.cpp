// run_eval end to end on a tiny random GPT-2 (GPT-2 tokenizer, n_embd 8) with the VADER reward and a
// crafted prompt file: eval.json agrees with generations.jsonl recomputed here (rewards, prompt
// scores, tail membership, CVaR), the prompt-score cache is reused, perplexity equals exp of an
// NLL recomputed with a plain forward pass, errors are one line, and the PNGs / comparison exist.
#include <gtest/gtest.h>
#include <unistd.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/data/dataset.h"
#include "rarlhf/eval/evaluator.h"
#include "rarlhf/model/gpt2.h"
#include "rarlhf/text/bpe_tokenizer.h"
#include "support/fake_rewards.h"
#include "support/temp_dir.h"
#include "support/tiny_policy.h"

using namespace rarlhf;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kData = std::string(RARLHF_SOURCE_DIR) + "/../shared/data";
const std::string kTokDir = kData + "/gpt2-tokenizer";
const std::string kLexicon = kData + "/sentiment-lexicons/vader_lexicon.txt";

bool have_assets() { return fs::exists(kTokDir + "/encoder.json") && fs::exists(kLexicon); }

// VADER, recording every batch of texts it is asked to score.
using CountingReward = rarlhf::testing::RecordingReward;

std::unique_ptr<RewardModel> vader() {
  RewardConfig rc;
  rc.type = "vader";
  rc.lexicon = kLexicon;
  return make_reward(rc, at::Device(at::kCPU));
}

class EvaluatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_assets()) GTEST_SKIP() << "../shared/data assets absent";
    tmp_.emplace("evaluator");
    root_ = tmp_->path();
    setenv("RARLHF_PLOT_SCRIPT", (std::string(RARLHF_SOURCE_DIR) + "/scripts/plot_eval.py").c_str(), 1);
    // A random 1-layer GPT-2 over the real GPT-2 vocabulary, saved in HF layout.
    rarlhf::testing::TinyGpt2 spec;
    spec.n_layer = 1;
    spec.n_embd = 8;
    spec.vocab_size = 50257;
    spec.bos_eos_id = -1;
    spec.tokenizer_dir = kTokDir;
    model_dir_ = rarlhf::testing::write_tiny_gpt2(root_ + "/policy", spec);
    // Twelve prompts: clearly negative, clearly positive and neutral openings.
    const char* texts[][2] = {
        {"This movie was terrible, awful and boring from start to end.", "neg"},
        {"What a horrible, sad waste of time; I hated every minute.", "neg"},
        {"Worst acting ever, ugly sets and a stupid, painful plot.", "neg"},
        {"A disgusting, dreadful mess that made me angry.", "neg"},
        {"I loved this wonderful film, a great and happy experience.", "pos"},
        {"Brilliant, beautiful and funny: the best movie of the year.", "pos"},
        {"An excellent cast and a delightful, charming story.", "pos"},
        {"The film is about a man who walks to the station.", "pos"},
        {"It was released in the spring and runs two hours.", "neg"},
        {"Nice photography, good music and a sweet ending.", "pos"},
        {"Dull, weak and terrible; avoid it.", "neg"},
        {"The story follows three friends across the country.", "pos"}};
    std::ofstream f(root_ + "/test.jsonl");
    for (auto& t : texts) f << json{{"text", t[0]}, {"label", t[1]}}.dump() << "\n";
    std::ofstream g(root_ + "/ppl.jsonl");
    g << json{{"text", "A lovely film with a great cast and a story that never drags at all."}, {"label", "pos"}}.dump()
      << "\n"
      << json{{"text", "Boring."}, {"label", "neg"}}.dump() << "\n"
      << json{{"text", "Good fun."}, {"label", "pos"}}.dump() << "\n";
  }
  Config config() const {
    Config c;
    c.run.name = "tiny";
    c.run.out_dir = root_ + "/runs/tiny";
    c.run.seed = 3;
    c.run.device = "cpu";
    c.model.path = model_dir_;
    c.data.format = "jsonl";
    c.data.test_path = root_ + "/test.jsonl";
    c.data.prompt_tokens = 6;
    c.generate.max_new_tokens = 5;
    c.generate.min_new_tokens = 5;
    c.generate.batch_size = 4;
    c.reward.type = "vader";
    c.reward.lexicon = kLexicon;
    c.eval.num_prompts = 10;
    c.eval.tail_threshold = -0.3;
    c.eval.cvar_alphas = {0.1, 0.5};
    c.eval.ppl_path = root_ + "/ppl.jsonl";
    c.eval.ppl_label_filter = "pos";
    c.eval.ppl_max_chars = 40;
    c.eval.plots = false;
    c.logging.progress = false;
    validate(c);
    return c;
  }

  std::optional<rarlhf::testing::TempDir> tmp_;  // removed with the fixture
  std::string root_, model_dir_;
};

std::vector<json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<json> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

bool is_png(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char sig[8] = {};
  f.read(sig, 8);
  return f.gcount() == 8 && std::string(sig + 1, 3) == "PNG";
}

bool have_matplotlib() { return std::system("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") == 0; }

}  // namespace

TEST_F(EvaluatorTest, TestSplitMatchesRecomputedGenerations) {
  Config cfg = config();
  CountingReward reward(vader());
  EvalOutcome res = run_eval(cfg, {}, reward, at::Device(at::kCPU));
  EXPECT_EQ(res.out_dir, cfg.run.out_dir + "/eval-test");
  EXPECT_EQ(res.test_prompts, 10);

  json ej = json::parse(read_file(res.out_dir + "/eval.json"));
  for (const char* k : {"name", "generations", "prompts", "reward", "prompt_score", "tail", "cvar", "dist",
                        "perplexity", "quantile_curve", "split", "response_tokens", "config"}) {
    EXPECT_TRUE(ej.contains(k)) << k;
  }
  EXPECT_EQ(ej["name"], "tiny");
  EXPECT_EQ(ej["split"], "test");
  EXPECT_DOUBLE_EQ(ej["response_tokens"]["mean"].get<double>(), 5.0);  // min_new_tokens = max: no early EOS

  auto rows = read_jsonl(res.out_dir + "/generations.jsonl");
  ASSERT_EQ(rows.size(), 10u);
  EXPECT_EQ(ej["generations"], 10);
  // Every prompt is one of the file's texts' openings; rewards and prompt scores are VADER's.
  auto check = vader();
  auto examples = read_texts(cfg.data, cfg.data.test_path);
  double sum = 0, tail_sum = 0, min_r = 1e9;
  int tail_n = 0;
  for (const auto& r : rows) {
    const std::string prompt = r["prompt"], response = r["response"];
    bool from_file = false;
    for (const auto& e : examples) from_file |= e.text.rfind(prompt, 0) == 0;
    EXPECT_TRUE(from_file) << prompt;
    EXPECT_NEAR(r["prompt_score"].get<double>(), check->score({prompt})[0], 1e-12);
    EXPECT_NEAR(r["reward"].get<double>(), check->score({prompt + response})[0], 1e-12);
    const double rw = r["reward"];
    sum += rw;
    min_r = std::min(min_r, rw);
    if (r["prompt_score"].get<double>() <= -0.3) tail_sum += rw, ++tail_n;
  }
  EXPECT_NEAR(ej["reward"]["mean"].get<double>(), sum / 10, 1e-12);
  ASSERT_GT(tail_n, 0);
  ASSERT_LT(tail_n, 10);
  EXPECT_EQ(ej["tail"]["count"], tail_n);
  EXPECT_NEAR(ej["tail"]["reward"]["mean"].get<double>(), tail_sum / tail_n, 1e-12);
  EXPECT_NEAR(ej["cvar"]["0.1"].get<double>(), min_r, 1e-12);  // alpha*n = 1: the single worst reward

  // The prompt scores were computed now and cached beside the run folder.
  EXPECT_EQ(res.scored_now, 10);
  EXPECT_EQ(res.cached_scores, 0);
  EXPECT_EQ(fs::path(res.prompt_cache).parent_path(), fs::path(root_ + "/runs"));
  EXPECT_TRUE(fs::exists(res.prompt_cache));
}

// eval.samples_per_prompt = 3 (DExperts/Quark pool 25 per prompt for Dist-n): 3 records per prompt,
// different continuations of it; the reward mean is over all 30; Dist-n pools each prompt's three
// responses, recomputed here from generations.jsonl with DExperts' definition (split on spaces,
// unique n-grams / words, averaged over prompts).
TEST_F(EvaluatorTest, SamplesPerPromptPoolsDistNPerPrompt) {
  Config cfg = config();
  cfg.eval.samples_per_prompt = 3;
  CountingReward reward(vader());
  EvalOutcome res = run_eval(cfg, {}, reward, at::Device(at::kCPU));
  EXPECT_EQ(res.test_prompts, 10);
  EXPECT_EQ(res.scored_now, 10);  // prompt scores once per prompt
  json ej = json::parse(read_file(res.out_dir + "/eval.json"));
  EXPECT_EQ(ej["generations"], 30);
  EXPECT_EQ(ej["prompts"], 10);
  auto rows = read_jsonl(res.out_dir + "/generations.jsonl");
  ASSERT_EQ(rows.size(), 30u);
  std::map<std::string, std::vector<std::string>> by_prompt;
  double sum = 0;
  for (const auto& r : rows) {
    by_prompt[r["prompt"].get<std::string>()].push_back(r["response"].get<std::string>());
    sum += r["reward"].get<double>();
  }
  ASSERT_EQ(by_prompt.size(), 10u);
  EXPECT_NEAR(ej["reward"]["mean"].get<double>(), sum / 30, 1e-12);
  double d1 = 0, d2 = 0;
  size_t distinct_samples = 0;
  for (const auto& [prompt, gens] : by_prompt) {
    ASSERT_EQ(gens.size(), 3u) << prompt;
    distinct_samples += std::set<std::string>(gens.begin(), gens.end()).size();
    std::set<std::string> uni, bi;
    double words = 0;
    for (const auto& g : gens) {
      std::vector<std::string> w;
      std::stringstream ss(g);
      for (std::string x; std::getline(ss, x, ' ');) w.push_back(x);
      if (!g.empty() && g.back() == ' ') w.push_back("");
      if (g.empty()) w.push_back("");
      words += static_cast<double>(w.size());
      for (size_t i = 0; i < w.size(); ++i) {
        uni.insert(w[i]);
        if (i + 1 < w.size()) bi.insert(w[i] + "\x1f" + w[i + 1]);
      }
    }
    d1 += static_cast<double>(uni.size()) / words / 10;
    d2 += static_cast<double>(bi.size()) / words / 10;
  }
  EXPECT_GT(distinct_samples, 20u);  // the copies of a prompt are sampled independently
  EXPECT_NEAR(ej["dist"]["dist1"].get<double>(), d1, 1e-12);
  EXPECT_NEAR(ej["dist"]["dist2"].get<double>(), d2, 1e-12);
}

TEST_F(EvaluatorTest, TailSplitReusesPromptScoreCache) {
  Config cfg = config();
  CountingReward first(vader());
  EvalOutcome test = run_eval(cfg, {}, first, at::Device(at::kCPU));
  const std::string cache_before = read_file(test.prompt_cache);

  CountingReward second(vader());
  EvalRequest req;
  req.split = "tail";
  req.name = "tiny-tail";
  EvalOutcome tail = run_eval(cfg, req, second, at::Device(at::kCPU));
  EXPECT_EQ(tail.out_dir, cfg.run.out_dir + "/eval-tail");
  EXPECT_EQ(tail.prompt_cache, test.prompt_cache);
  EXPECT_EQ(tail.scored_now, 0);
  EXPECT_EQ(tail.cached_scores, 10);
  EXPECT_EQ(read_file(tail.prompt_cache), cache_before);
  // The reward model saw only the completions of the tail prompts, no prompt alone.
  const size_t n_tail = test.metrics.tail.indices.size();
  ASSERT_EQ(tail.records.size(), n_tail);
  EXPECT_EQ(second.seen.size(), n_tail);
  for (const auto& r : tail.records) EXPECT_LE(r.prompt_score, -0.3);
  std::multiset<std::string> tail_prompts, expected;
  for (const auto& r : tail.records) tail_prompts.insert(r.prompt);
  for (size_t i : test.metrics.tail.indices) expected.insert(test.records[i].prompt);
  EXPECT_EQ(tail_prompts, expected);
  json ej = json::parse(read_file(tail.out_dir + "/eval.json"));
  EXPECT_EQ(ej["split"], "tail");
  EXPECT_EQ(ej["tail"]["count"].get<size_t>(), n_tail);  // every record of a tail run is in the tail
  EXPECT_NEAR(ej["tail"]["reward"]["mean"].get<double>(), ej["reward"]["mean"].get<double>(), 1e-12);

  // Quantile rule: the worst 25% of 10 prompts = 3 prompts.
  cfg.eval.tail_quantile = 0.25;
  req.out_dir = root_ + "/q";
  EvalOutcome q = run_eval(cfg, req, second, at::Device(at::kCPU));
  EXPECT_EQ(q.records.size(), 3u);
  EXPECT_EQ(q.scored_now, 0);
}

TEST_F(EvaluatorTest, PerplexityIsExpOfRecomputedNll) {
  Config cfg = config();
  CountingReward reward(vader());
  EvalOutcome res = run_eval(cfg, {}, reward, at::Device(at::kCPU));
  json ej = json::parse(read_file(res.out_dir + "/eval.json"));
  ASSERT_TRUE(ej["perplexity"].is_object());

  // Independent NLL: BOS + tokens, one plain forward pass per text, log-softmax at each position.
  Policy p = load_policy(model_dir_, "float32", at::Device(at::kCPU));
  BpeTokenizer tok = BpeTokenizer::from_dir(model_dir_);
  const std::vector<std::string> texts = {"A lovely film with a great cast and a st", "Good fun."};  // pos, cut to 40
  double nll_total = 0, per_text = 0;
  int64_t tokens = 0;
  torch::NoGradGuard ng;
  for (const auto& t : texts) {
    std::vector<int64_t> ids = {50256};
    for (int64_t id : tok.encode(t)) ids.push_back(id);
    auto x = torch::tensor(ids, torch::kLong).unsqueeze(0);  // [1, T]
    auto logp = torch::log_softmax(p.lm->lm_logits(p.lm->forward_hidden(x, {})), -1)[0];  // [T, V]
    double nll = 0;
    for (size_t i = 1; i < ids.size(); ++i) nll -= logp[i - 1][ids[i]].item<double>();
    const int64_t n = static_cast<int64_t>(ids.size()) - 1;
    nll_total += nll;
    tokens += n;
    per_text += std::exp(nll / n);
  }
  EXPECT_EQ(ej["perplexity"]["texts"], 2);
  EXPECT_EQ(ej["perplexity"]["tokens"], tokens);
  EXPECT_NEAR(ej["perplexity"]["corpus"].get<double>() / std::exp(nll_total / tokens), 1.0, 1e-4);
  EXPECT_NEAR(ej["perplexity"]["mean_per_text"].get<double>() / (per_text / 2), 1.0, 1e-4);

  // No reference texts of the asked label, or no ppl_path: perplexity is skipped (null).
  cfg.eval.ppl_label_filter = "none-such";
  EvalRequest req;
  req.out_dir = root_ + "/noppl";
  run_eval(cfg, req, reward, at::Device(at::kCPU));
  EXPECT_TRUE(json::parse(read_file(req.out_dir + "/eval.json"))["perplexity"].is_null());
}

TEST_F(EvaluatorTest, PromptPrefixGoesToTheModelOnly) {
  Config cfg = config();
  cfg.eval.prompt_prefix = "Write a positive review:";
  cfg.eval.ppl_path = "";
  CountingReward reward(vader());
  EvalOutcome res = run_eval(cfg, {}, reward, at::Device(at::kCPU));
  EXPECT_EQ(res.eval_json["prompt_prefix"], "Write a positive review:");
  EXPECT_TRUE(res.eval_json["perplexity"].is_null());
  for (const auto& r : res.records) EXPECT_EQ(r.prompt.find("Write a positive"), std::string::npos);
  for (const auto& t : reward.seen) EXPECT_EQ(t.find("Write a positive"), std::string::npos) << t;

  // Same prompts and seed without the prefix: the model saw a different context, so (with a 50 257-way
  // random model) the sampled responses differ.
  cfg.eval.prompt_prefix = "";
  EvalRequest req;
  req.out_dir = root_ + "/noprefix";
  EvalOutcome plain = run_eval(cfg, req, reward, at::Device(at::kCPU));
  ASSERT_EQ(plain.records.size(), res.records.size());
  int differ = 0;
  for (size_t i = 0; i < res.records.size(); ++i) {
    EXPECT_EQ(plain.records[i].prompt, res.records[i].prompt);
    differ += plain.records[i].response != res.records[i].response;
  }
  EXPECT_GT(differ, 0);
}

TEST_F(EvaluatorTest, OneLineErrors) {
  CountingReward reward(vader());
  Config cfg = config();
  cfg.data.test_path = "";
  EXPECT_THROW(run_eval(cfg, {}, reward, at::Device(at::kCPU)), ConfigError);
  cfg = config();
  cfg.eval.tail_threshold = -5;  // VADER compound >= -1: no prompt can be in the tail
  EvalRequest req;
  req.split = "tail";
  try {
    run_eval(cfg, req, reward, at::Device(at::kCPU));
    FAIL() << "empty tail accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("eval.tail_threshold"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
  req.split = "tails";
  EXPECT_THROW(run_eval(config(), req, reward, at::Device(at::kCPU)), ConfigError);
  req = {};
  req.model_dir = root_ + "/no-such-model";
  cfg = config();
  cfg.model.tokenizer = model_dir_;
  CountingReward untouched(vader());
  EXPECT_THROW(run_eval(cfg, req, untouched, at::Device(at::kCPU)), IoError);
  EXPECT_TRUE(untouched.seen.empty());  // the bad model folder fails before any scoring
  EXPECT_THROW(compare_eval_runs({root_ + "/nothing"}, root_ + "/cmp", false), IoError);
}

TEST_F(EvaluatorTest, PlotsAndComparison) {
  if (!have_matplotlib()) GTEST_SKIP() << "/usr/bin/python3 has no matplotlib";
  Config cfg = config();
  cfg.eval.plots = true;
  CountingReward reward(vader());
  EvalOutcome a = run_eval(cfg, {}, reward, at::Device(at::kCPU));
  EXPECT_TRUE(a.plotted);
  EXPECT_TRUE(is_png(a.out_dir + "/reward_hist.png"));
  EXPECT_TRUE(is_png(a.out_dir + "/quantile_plot.png"));

  cfg.run.seed = 4;
  EvalRequest req;
  req.name = "tiny-seed4";
  req.out_dir = root_ + "/seed4";
  EvalOutcome b = run_eval(cfg, req, reward, at::Device(at::kCPU));
  const std::string out = root_ + "/cmp";
  std::string table = compare_eval_runs({a.out_dir, b.out_dir}, out, true);
  EXPECT_NE(table.find("tiny "), std::string::npos) << table;
  EXPECT_NE(table.find("tiny-seed4"), std::string::npos) << table;
  EXPECT_EQ(read_file(out + "/compare.txt"), table);
  json rows = json::parse(read_file(out + "/compare.json"));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_DOUBLE_EQ(rows[0]["reward"].get<double>(), a.metrics.reward.mean);
  EXPECT_DOUBLE_EQ(rows[1]["tail_reward"].get<double>(), b.metrics.tail_reward.mean);
  EXPECT_DOUBLE_EQ(rows[1]["perplexity"].get<double>(), b.metrics.perplexity.mean_per_text);
  EXPECT_TRUE(is_png(out + "/reward_hist.png"));
  EXPECT_TRUE(is_png(out + "/quantile_plot.png"));
}

TEST(EvalTable, FormatsValuesAndMarksMissingOnes) {
  json a = {{"name", "rlhf"},         {"split", "test"},
            {"generations", 5000},    {"reward", {{"mean", 1.2604}}},
            {"tail", {{"count", 900}, {"reward", {{"mean", -1.96}}}}},
            {"cvar", {{"0.1", -2.5}}}, {"perplexity", {{"mean_per_text", 44.321}}},
            {"dist", {{"dist1", 0.5}, {"dist2", 0.75}, {"dist3", 0.875}}},
            {"response_tokens", {{"mean", 48.0}}}};
  json b = {{"name", "gpt2"}, {"reward", {{"mean", -0.03}}}, {"perplexity", nullptr}};
  const std::string t = eval_table({a, b});
  const std::string expected =
      "run   split     n  reward      tail (n)  CVaR_0.1    PPL  Dist-1  Dist-2  Dist-3  resp_tok\n"
      "rlhf   test  5000   1.260  -1.960 (900)    -2.500  44.32   0.500   0.750   0.875      48.0\n"
      "gpt2      -     -  -0.030             -         -      -       -       -       -         -\n";
  EXPECT_EQ(t, expected);
}
