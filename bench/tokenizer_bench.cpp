// GPT-2 BPE encode/decode throughput on real review text (UCI sentences + IMDB reviews), bytes/s via
// SetBytesProcessed. scripts/bench_tokenizer.sh runs it beside the JS reference (gpt-3-encoder) on the
// same corpus and prints the ratio. Inputs (env): RARLHF_BENCH_CORPUS = JSON array of texts (else the
// UCI json + IMDB csv files under RARLHF_SHARED_DATA, ../shared/data or assets/uci), RARLHF_BENCH_TOKENIZER.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "rarlhf/common/fs.h"
#include "rarlhf/text/bpe_tokenizer.h"

namespace {

using rarlhf::BpeTokenizer;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// Minimal RFC 4180 reader: the `review` column of a pandas CSV (quoted fields, "" escapes, newlines).
std::vector<std::string> csv_column(const std::string& path, const std::string& column) {
  std::string s = rarlhf::read_file(path);
  std::vector<std::vector<std::string>> rows(1);
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quoted) {
      if (c == '"' && i + 1 < s.size() && s[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().push_back(std::move(field));
      field.clear();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      rows.back().push_back(std::move(field));
      field.clear();
      rows.emplace_back();
    } else {
      field += c;
    }
  }
  if (!field.empty() || !rows.back().empty()) rows.back().push_back(field);
  std::vector<std::string> out;
  size_t col = 0;
  while (col < rows[0].size() && rows[0][col] != column) ++col;
  for (size_t r = 1; r < rows.size(); ++r) {
    if (col < rows[r].size() && !rows[r][col].empty()) out.push_back(rows[r][col]);
  }
  return out;
}

std::vector<std::string> load_corpus() {
  std::vector<std::string> texts;
  std::string corpus = env_or("RARLHF_BENCH_CORPUS", "");
  if (!corpus.empty()) {
    for (const auto& t : nlohmann::json::parse(rarlhf::read_file(corpus))) texts.push_back(t.get<std::string>());
    return texts;
  }
  std::string data = env_or("RARLHF_SHARED_DATA", "../shared/data");
  std::string uci = rarlhf::file_exists(data + "/uci-sentiment-sentences/imdb.json") ? data + "/uci-sentiment-sentences"
                                                                                     : env_or("RARLHF_ASSETS_DIR", "assets") + "/uci";
  for (const char* name : {"imdb", "amazon", "yelp"}) {
    for (const auto& e : nlohmann::json::parse(rarlhf::read_file(uci + "/" + name + ".json"))) {
      if (e["text"].is_string() && !e["text"].get<std::string>().empty()) texts.push_back(e["text"]);
    }
  }
  for (const char* f : {"critical_neg_texts.csv", "critical_pos_texts.csv", "critical_neg_texts_200char.csv",
                        "tails_neg_texts_200char.csv", "tails_pos_texts_200char.csv"}) {
    std::string path = data + "/imdb-rarlhf/" + f;
    if (rarlhf::file_exists(path)) {
      for (auto& t : csv_column(path, "review")) texts.push_back(std::move(t));
    }
  }
  return texts;
}

std::string tokenizer_dir() {
  std::string dir = env_or("RARLHF_BENCH_TOKENIZER", "");
  if (!dir.empty()) return dir;
  std::string shared = env_or("RARLHF_SHARED_DATA", "../shared/data") + "/gpt2-tokenizer";
  return rarlhf::file_exists(shared + "/encoder.json") ? shared : env_or("RARLHF_ASSETS_DIR", "assets") + "/gpt2";
}

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> texts = load_corpus();
  return texts;
}

int64_t corpus_bytes() {
  int64_t n = 0;
  for (const auto& t : corpus()) n += static_cast<int64_t>(t.size());
  return n;
}

const BpeTokenizer& shared_tokenizer() {
  static const BpeTokenizer tok = BpeTokenizer::from_dir(tokenizer_dir());
  return tok;
}

// Steady state: the merge cache already holds the corpus' words (as in a training run's later passes).
void BM_EncodeWarm(benchmark::State& state) {
  const auto& tok = shared_tokenizer();
  int64_t tokens = 0;
  for (const auto& t : corpus()) tokens += static_cast<int64_t>(tok.encode(t).size());
  for (auto _ : state) {
    for (const auto& t : corpus()) benchmark::DoNotOptimize(tok.encode(t));
  }
  state.SetBytesProcessed(state.iterations() * corpus_bytes());
  state.counters["tokens"] = static_cast<double>(tokens);
  state.counters["texts"] = static_cast<double>(corpus().size());
}
BENCHMARK(BM_EncodeWarm)->Unit(benchmark::kMillisecond);

// First pass with an empty cache: every distinct word goes through the merge loop once.
void BM_EncodeCold(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    auto tok = BpeTokenizer::from_dir(tokenizer_dir());
    state.ResumeTiming();
    for (const auto& t : corpus()) benchmark::DoNotOptimize(tok.encode(t));
  }
  state.SetBytesProcessed(state.iterations() * corpus_bytes());
}
BENCHMARK(BM_EncodeCold)->Unit(benchmark::kMillisecond)->Iterations(5);

void BM_Pretokenize(benchmark::State& state) {
  for (auto _ : state) {
    for (const auto& t : corpus()) benchmark::DoNotOptimize(rarlhf::gpt2_pretokenize(t));
  }
  state.SetBytesProcessed(state.iterations() * corpus_bytes());
}
BENCHMARK(BM_Pretokenize)->Unit(benchmark::kMillisecond);

void BM_Decode(benchmark::State& state) {
  const auto& tok = shared_tokenizer();
  std::vector<std::vector<int64_t>> ids;
  for (const auto& t : corpus()) ids.push_back(tok.encode(t));
  for (auto _ : state) {
    for (const auto& v : ids) benchmark::DoNotOptimize(tok.decode(v));
  }
  state.SetBytesProcessed(state.iterations() * corpus_bytes());
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);

void BM_Load(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(BpeTokenizer::from_dir(tokenizer_dir()));
}
BENCHMARK(BM_Load)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
