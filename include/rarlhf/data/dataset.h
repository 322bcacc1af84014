// Dataset readers: every format a user brings (DESIGN §4) becomes a list of TextExample.
// Formats (data.format): jsonl | csv | lines | imdb_dir | jigsaw_csv | rtp_jsonl | uci_json.
// Malformed rows are counted and reported with file:line (on_error=skip) or thrown as IoError
// (on_error=fail); a missing column/field in the header or config is always a ConfigError.
// Torch-free. Paper facts (reference/ra-rlhf.md §1.6): IMDB len(text) > 200, RTP toxic >= 0.5.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "rarlhf/config/config.h"

namespace rarlhf {

struct TextExample {
  std::string text;
  std::string label;          // "" = none. imdb_dir/uci_json: pos|neg; jigsaw_csv/rtp_jsonl: toxic|non-toxic
  double given_score = NAN;   // precomputed prompt score (data.score_field; jigsaw_csv "reward"); NaN = none
  std::string reference;      // human continuation when the dataset has one (rtp_jsonl continuation.text)
  std::string where;          // "file:line" (uci_json: "file:item N"; imdb_dir: the review's file)
};

struct ReadReport {
  int64_t rows = 0;       // records read (blank lines are not records)
  int64_t kept = 0;       // returned
  int64_t filtered = 0;   // well-formed but dropped: too short / empty, unlabelled (RTP null toxicity,
                          // Kaggle test label -1)
  int64_t malformed = 0;  // bad JSON, wrong field count, bad quoting, missing field, bad label/score
  std::vector<std::string> problems;  // the first kMaxProblems malformed rows, "file:line: what"
  static constexpr size_t kMaxProblems = 20;
};

// Reads `path` in format cfg.format, keeping texts longer than cfg.min_chars characters (Unicode
// code points, as Python's len) and at most cfg.max_examples of them (0 = all), in file order
// (imdb_dir: neg and pos reviews interleaved, each by review id, so a cap stays balanced).
// Format notes:
//   jsonl       one object per line; text/label/score fields may be dotted paths ("prompt.text");
//               labels may be strings, integers ("1") or booleans ("true"/"false")
//   csv         header row; columns text_field, label_field ("" = none), score_field ("" = none)
//   lines       every non-blank line is one text, no label
//   imdb_dir    a split folder of aclImdb (e.g. aclImdb/train) with pos/ and neg/ *.txt, each text
//               as in the file (HF `imdb`: "<br />" kept; imdb_line_breaks=newline turns it into
//               "\n"); min_chars applies to the raw text, as the paper filtered HF `imdb`
//   jigsaw_csv  Kaggle train.csv (comment_text, toxic 0/1 -> non-toxic/toxic; "reward" column ->
//               given_score when present), or test.csv with test_labels.csv beside it (joined on
//               id; label -1 = unscored by Kaggle -> filtered). text_field/label_field are unused.
//   rtp_jsonl   RealToxicityPrompts prompts.jsonl: prompt.text, prompt.toxicity >= 0.5 -> toxic
//               (null -> filtered), continuation.text -> reference
//   uci_json    npm `sentiment` fixtures: a JSON array of {"text", "class": 0|1} -> neg|pos
// Throws ConfigError for a bad format/field, IoError for an unreadable file, a file with no
// usable text, or (on_error=fail) the first malformed row.
std::vector<TextExample> read_texts(const DataConfig& cfg, const std::string& path,
                                    ReadReport* report = nullptr);

// Number of Unicode code points in UTF-8 `s` (continuation bytes are not counted).
int64_t utf8_length(const std::string& s);

// The first n code points of UTF-8 `s` (Python's s[:n]); all of s when it is shorter.
std::string utf8_prefix(const std::string& s, int64_t n);

// Keeps the examples whose label equals `label` ("" keeps all).
std::vector<TextExample> filter_label(const std::vector<TextExample>& examples, const std::string& label);

}  // namespace rarlhf
