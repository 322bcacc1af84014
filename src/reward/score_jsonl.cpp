// JSONL in, JSONL + "score" out (see score_jsonl.h), and the Spearman correlation used to compare
// reward models (VADER vs the paper's classifiers, tests/reward/agreement_test.cpp).
#include "rarlhf/reward/score_jsonl.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/strings.h"
#include "rarlhf/common/text_lines.h"

namespace rarlhf {
namespace {

using Row = nlohmann::ordered_json;

std::string field_text(const Row& row, const std::string& path, const std::string& where) {
  const Row* cur = &row;
  for (const auto& part : split(path, '.')) {
    if (!cur->is_object() || !cur->contains(part)) {
      std::string present;
      if (row.is_object())
        for (auto it = row.begin(); it != row.end(); ++it) present += (present.empty() ? "" : ", ") + it.key();
      throw IoError(where + ": no field '" + path + "' (fields: " + present +
                    "); name the field that holds the text (or the prompt and response fields)");
    }
    cur = &(*cur)[part];
  }
  if (!cur->is_string()) throw IoError(where + ": field '" + path + "' is " + cur->type_name() + ", expected a string");
  return cur->get<std::string>();
}

}  // namespace

std::vector<double> score_jsonl(RewardModel& reward, const std::string& in_path, const std::string& out_path,
                                const ScoreJsonlSpec& spec) {
  const bool pair = !spec.prompt_field.empty() || !spec.response_field.empty();
  if (pair && (spec.prompt_field.empty() || spec.response_field.empty()))
    throw ConfigError("score: a prompt field and a response field go together; name both, or one text field");
  using choice::RewardInput;
  if (spec.input != RewardInput::kPromptResponse && spec.input != RewardInput::kResponse)
    throw ConfigError("reward.input: \"" + spec.input + "\" is unknown; use " + RewardInput::kPromptResponse + " or " +
                      RewardInput::kResponse);

  std::vector<Row> rows;
  std::vector<std::string> texts;
  for_each_line(read_file(in_path), [&](int64_t lineno, const std::string& line) {
    const std::string where = in_path + ":" + std::to_string(lineno);
    Row row;
    try {
      row = Row::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw IoError(where + ": not a JSON object line; each line must be one JSON object");
    }
    if (!row.is_object()) throw IoError(where + ": not a JSON object; each line must be one JSON object");
    if (pair) {
      std::string response = field_text(row, spec.response_field, where);
      texts.push_back(spec.input == RewardInput::kResponse ? response : field_text(row, spec.prompt_field, where) + response);
    } else {
      texts.push_back(field_text(row, spec.field, where));
    }
    rows.push_back(std::move(row));
  });
  RARLHF_LOG_INFO("scoring {} rows of {} with {}", texts.size(), in_path, reward.describe());
  std::vector<double> scores = reward.score(texts);
  if (scores.size() != texts.size()) throw std::logic_error("reward model returned a wrong number of scores");

  auto write = [&](std::ostream& os) {
    for (size_t i = 0; i < rows.size(); ++i) {
      rows[i]["score"] = scores[i];
      os << rows[i].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    }
  };
  if (out_path.empty() || out_path == "-") {
    write(std::cout);
    std::cout.flush();
  } else {
    write_file_atomic(out_path, write);
  }
  return scores;
}

namespace {
std::vector<double> average_ranks(const std::vector<double>& x) {
  std::vector<size_t> idx(x.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> r(x.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && x[idx[j + 1]] == x[idx[i]]) ++j;
    double rank = 0.5 * (i + j) + 1.0;  // ties share their average rank
    for (size_t k = i; k <= j; ++k) r[idx[k]] = rank;
    i = j + 1;
  }
  return r;
}
}  // namespace

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) throw std::invalid_argument("spearman: inputs differ in length");
  const size_t n = a.size();
  if (n < 2) return std::numeric_limits<double>::quiet_NaN();
  std::vector<double> ra = average_ranks(a), rb = average_ranks(b);
  double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / n, mb = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  if (saa == 0 || sbb == 0) return std::numeric_limits<double>::quiet_NaN();
  return sab / std::sqrt(saa * sbb);  // Pearson correlation of the ranks
}

}  // namespace rarlhf
