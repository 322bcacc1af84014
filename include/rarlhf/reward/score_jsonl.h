// Scoring a JSONL file with a reward model (the work behind `rarlhf score`): each row keeps its
// fields (in order) and gains "score". The text is one field, or prompt + response joined the way
// the trainer joins them (reward.input: "prompt+response" = plain concatenation, "response" = only
// the response). Fields may be dotted paths ("prompt.text").
#pragma once
#include <string>
#include <vector>

#include "rarlhf/reward/reward.h"

namespace rarlhf {

struct ScoreJsonlSpec {
  std::string field = "text";   // used when prompt_field/response_field are empty
  std::string prompt_field;     // with response_field: score prompt + response
  std::string response_field;
  std::string input = choice::RewardInput::kPromptResponse;  // as reward.input
};

// Reads `in_path`, scores every non-blank line, writes rows + "score" to out_path atomically
// ("" or "-" = stdout). Returns the scores in row order. A bad line or missing/non-string field is an
// IoError "<file>:<line>: ..." naming the field and the fields present.
std::vector<double> score_jsonl(RewardModel& reward, const std::string& in_path, const std::string& out_path,
                                const ScoreJsonlSpec& spec);

// Spearman rank correlation (average ranks for ties); NaN when fewer than 2 points or a constant input.
double spearman(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace rarlhf
