// `rarlhf tokenize`: encodes text to GPT-2 BPE ids (or decodes ids back to text) with a tokenizer
// folder (tokenizer.json, vocab.json + merges.txt, or encoder.json + vocab.bpe). For checking prompts
// and model output by hand, and for comparing with other tokenizers. The work is in BpeTokenizer.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/strings.h"
#include "rarlhf/text/bpe_tokenizer.h"

namespace rarlhf::cli {

namespace {

struct TokenizeArgs {
  std::string tokenizer;
  std::string text;
  std::string input;
  std::string ids;
  bool decode = false;
  bool json = false;
  bool lines = false;
};

// "15496, 995\n13" -> ids; `what` names the source in errors.
std::vector<int64_t> parse_ids(const std::string& s, const std::string& what) {
  std::vector<int64_t> ids;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(cur, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != cur.size()) {
      throw ConfigError(what + ": '" + cur + "' is not an integer token id; give ids like 15496,995");
    }
    ids.push_back(v);
    cur.clear();
  };
  for (char c : s) {
    if (c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      flush();
    } else {
      cur += c;
    }
  }
  flush();
  return ids;
}

std::string json_str(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void print_encoded(const BpeTokenizer& tok, const std::string& text, bool json) {
  auto ids = tok.encode(text);
  if (json) {
    nlohmann::json tokens = nlohmann::json::array();
    for (auto id : ids) tokens.push_back(tok.token(id));
    std::cout << "{\"ids\":" << nlohmann::json(ids).dump() << ",\"tokens\":"
              << tokens.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << ",\"n_tokens\":" << ids.size()
              << "}\n";
    return;
  }
  for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? "," : "") << ids[i];
  std::cout << "\n";
}

void print_decoded(const BpeTokenizer& tok, const std::vector<int64_t>& ids, const std::string& what, bool json) {
  std::string text;
  try {
    text = tok.decode(ids);
  } catch (const std::out_of_range& e) {
    throw ConfigError(what + ": " + e.what() + "; give ids from this tokenizer's vocab");
  }
  if (json) {
    std::cout << "{\"text\":" << json_str(text) << ",\"n_tokens\":" << ids.size() << "}\n";
  } else {
    std::cout << text << "\n";
  }
}

void run_tokenize(const TokenizeArgs& a) {
  if (a.text.empty() && a.input.empty() && a.ids.empty()) {
    throw ConfigError("tokenize: give --text STR, --input FILE or --ids \"1,2,3\"");
  }
  auto tok = BpeTokenizer::from_dir(a.tokenizer);
  const bool decode = a.decode || !a.ids.empty();
  if (decode) {
    if (!a.text.empty()) throw ConfigError("tokenize: --decode takes --ids \"1,2,3\" or --input FILE, not --text");
    if (!a.ids.empty()) {
      print_decoded(tok, parse_ids(a.ids, "--ids"), "--ids", a.json);
      return;
    }
    std::string content = read_file(a.input);
    if (!a.lines) {
      print_decoded(tok, parse_ids(content, a.input), a.input, a.json);
      return;
    }
    auto rows = split(content, '\n');
    for (size_t i = 0; i < rows.size(); ++i) {
      if (i + 1 == rows.size() && rows[i].empty()) break;
      std::string where = a.input + ": line " + std::to_string(i + 1);
      print_decoded(tok, parse_ids(rows[i], where), where, a.json);
    }
    return;
  }
  if (!a.text.empty()) {
    print_encoded(tok, a.text, a.json);
    return;
  }
  std::string content = read_file(a.input);
  if (!a.lines) {
    print_encoded(tok, content, a.json);
    return;
  }
  auto rows = split(content, '\n');
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i + 1 == rows.size() && rows[i].empty()) break;  // the file's final newline
    print_encoded(tok, rows[i], a.json);
  }
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto* sub = app.add_subcommand("tokenize", "Encode text to GPT-2 BPE token ids, or decode ids to text");
  auto a = std::make_shared<TokenizeArgs>();
  sub->add_option("--tokenizer", a->tokenizer,
                  "tokenizer folder: tokenizer.json, vocab.json + merges.txt, or encoder.json + vocab.bpe")
      ->required();
  auto* text = sub->add_option("--text", a->text, "text to encode");
  auto* input = sub->add_option("--input", a->input, "file to encode (or, with --decode, a file of ids)");
  auto* ids = sub->add_option("--ids", a->ids, "comma-separated ids to decode, e.g. \"15496,995\" (implies --decode)");
  text->excludes(input)->excludes(ids);
  input->excludes(ids);
  sub->add_flag("--decode", a->decode, "decode ids (from --ids or --input) to text");
  sub->add_flag("--json", a->json, "print JSON: {\"ids\", \"tokens\", \"n_tokens\"} or {\"text\", \"n_tokens\"}");
  sub->add_flag("--lines", a->lines, "with --input: one text (or id list) per line, one output line each");
  sub->callback([a] { run_tokenize(*a); });
}

}  // namespace rarlhf::cli
