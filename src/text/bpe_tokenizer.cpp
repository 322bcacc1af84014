// BPE: loading (tokenizer.json / vocab.json + merges.txt / encoder.json + vocab.bpe, tokenizer_config.json),
// encode = added-token split -> [normalizer -> pre-tokenizer of tokenizer.json (hf_pipeline.cpp)] or GPT-2
// pre-tokenisation -> bytes (byte-level) or characters (SentencePiece-style, byte_fallback) to symbols ->
// merges by rank (lowest rank first, all its non-overlapping occurrences left to right, as in openai/gpt-2
// encoder.py) -> ids, with a sharded thread-safe cache of merged pieces. decode maps ids back to bytes, or
// runs tokenizer.json's decoder.
#include "rarlhf/text/bpe_tokenizer.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstdio>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "hf_pipeline.h"
#include "text_internal.h"

namespace rarlhf {
namespace text_detail {

// (left id, right id) -> (rank, merged id), open addressing: the hot lookup of the merge loop.
class MergeTable {
 public:
  struct Hit {
    int32_t rank;
    int32_t merged;
  };
  void build(const std::vector<std::array<int32_t, 3>>& merges) {  // {left, right, merged}, index = rank
    size_t cap = 16;
    while (cap < merges.size() * 2) cap <<= 1;
    slots_.assign(cap, Slot{kEmpty, 0, 0});
    mask_ = cap - 1;
    for (size_t r = 0; r < merges.size(); ++r) {
      uint64_t key = make_key(merges[r][0], merges[r][1]);
      size_t h = hash(key);
      while (slots_[h].key != kEmpty && slots_[h].key != key) h = (h + 1) & mask_;
      // A repeated pair takes its last rank, as dict(zip(merges, range(...))) does in encoder.py.
      slots_[h] = Slot{key, static_cast<int32_t>(r), merges[r][2]};
    }
  }
  // rank INT_MAX when the pair is not a merge.
  Hit find(int32_t a, int32_t b) const {
    uint64_t key = make_key(a, b);
    size_t h = hash(key);
    while (true) {
      const Slot& s = slots_[h];
      if (s.key == kEmpty) return {INT_MAX, -1};  // first: (-1, -1) (unknown bytes) has the empty key
      if (s.key == key) return {s.rank, s.merged};
      h = (h + 1) & mask_;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  struct Slot {
    uint64_t key;
    int32_t rank;
    int32_t merged;
  };
  static uint64_t make_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  size_t hash(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 20) & mask_; }
  std::vector<Slot> slots_{Slot{kEmpty, 0, 0}};
  size_t mask_ = 0;
};

struct BpeModel {
  std::string source;                                   // path(s) for messages
  std::unordered_map<std::string, int32_t> token_to_id;
  std::vector<std::string> id_to_token;                 // "" for ids no token uses
  std::vector<uint8_t> id_used;
  std::vector<std::string> id_to_bytes;                 // what decode() emits per id
  std::array<int32_t, 256> byte_id{};                   // id of each byte's symbol, -1 if none
  int32_t unk_id = -1;
  int32_t eos_id = -1;
  std::vector<std::pair<std::string, int32_t>> specials;  // matched in text, longest first
  MergeTable merges;

  // Loaded from tokenizer.json: added tokens and the pipeline below replace `specials` and GPT-2's regex.
  bool hf = false;
  bool byte_level = true;     // symbols are GPT-2's byte alphabet; false: the vocab's characters
  bool gpt2_fast = false;     // no normalizer, ByteLevel(use_regex, no prefix space) only: the hand-written path
  bool byte_fallback = false;  // unknown characters -> <0xXX> tokens
  bool fuse_unk = false;
  bool ignore_merges = false;  // a piece that is itself in the vocab is one token (Llama-3)
  std::array<int32_t, 256> fallback_id{};                // id of <0xXX>, -1 if none
  std::array<std::string, 256> byte_char;                 // GPT-2 alphabet character of each byte (UTF-8)
  Pipeline pipeline;
  std::vector<AddedToken> added;
  std::vector<const AddedToken*> raw_added, normalized_added;  // matched before / after the normalizer
  std::vector<uint8_t> id_added;                          // ids of added tokens
  std::unordered_map<int32_t, std::string> added_piece;    // normalized added tokens decode as their normalized form
  std::vector<int32_t> prefix_ids, suffix_ids;            // what encode(text, true) adds
  int32_t bos_id = -1;
  int32_t pad_id = -1;
  std::array<int16_t, 512> c2b{};                         // GPT-2 alphabet code point -> byte, -1 if none
};

// Memo of piece bytes -> ids. Sharded so that threads encoding at once rarely wait on one lock.
// In front of it each thread keeps a small lock-free direct-mapped copy (see encode()), tagged with
// the cache's generation so that entries of a destroyed tokenizer are never reused.
struct BpeCache {
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxPerShard = 1 << 16;  // bounded: a shard is cleared when full
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>> map;
  };
  std::array<Shard, kShards> shards;
  const uint64_t generation = next_generation();

  static uint64_t next_generation() {
    static std::atomic<uint64_t> counter{0};
    return ++counter;
  }
};

struct ThreadCacheEntry {
  uint64_t generation = 0;  // 0 = empty
  size_t hash = 0;
  std::string key;
  std::vector<int32_t> ids;
};
constexpr size_t kThreadCacheSize = 1 << 14;  // entries per thread, direct-mapped by hash

// GPT-2's reversible byte -> unicode table: printable Latin-1 bytes map to themselves, the other
// 68 bytes to U+0100.. in byte order (bytes_to_unicode() in openai/gpt-2 encoder.py).
std::array<uint32_t, 256> byte_to_codepoint() {
  std::array<uint32_t, 256> t{};
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    t[b] = printable ? static_cast<uint32_t>(b) : next++;
  }
  return t;
}

void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

namespace {

// A token or line of the user's files as an error line shows it: JSON-quoted, cut (jdump).
std::string quote_token(const std::string& s) { return jdump(nlohmann::json(s)); }

// Maps a vocab string in the byte-level alphabet back to bytes. Characters outside the alphabet
// (possible in hand-made vocabs) pass through as their own UTF-8, like HF's ByteLevel decoder.
// all_in (optional): set to false when some character is outside the alphabet.
std::string token_bytes(const std::string& tok, const std::array<int16_t, 512>& cp_to_byte, bool* all_in = nullptr) {
  std::string out;
  if (all_in) *all_in = true;
  size_t i = 0;
  while (i < tok.size()) {
    unsigned char b0 = static_cast<unsigned char>(tok[i]);
    int len = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
    if (i + len > tok.size()) len = 1;
    uint32_t cp = b0;
    if (len == 2) cp = ((b0 & 0x1F) << 6) | (tok[i + 1] & 0x3F);
    if (len == 3) cp = ((b0 & 0x0F) << 12) | ((tok[i + 1] & 0x3F) << 6) | (tok[i + 2] & 0x3F);
    if (len == 4) cp = ((b0 & 0x07) << 18) | ((tok[i + 1] & 0x3F) << 12) | ((tok[i + 2] & 0x3F) << 6) | (tok[i + 3] & 0x3F);
    if (cp < cp_to_byte.size() && cp_to_byte[cp] >= 0) {
      out += static_cast<char>(cp_to_byte[cp]);
    } else {
      out.append(tok, i, len);
      if (all_in) *all_in = false;
    }
    i += len;
  }
  return out;
}

nlohmann::json parse_json_file(const std::string& path) {
  std::string content = read_file(path);
  try {
    return nlohmann::json::parse(content);
  } catch (const nlohmann::json::parse_error& e) {
    throw IoError(path + ": invalid JSON (" + e.what() + "); replace it with a valid tokenizer file");
  }
}

// {"token": id, ...} -> model vocab. `where` names the file (and JSON path) in messages.
void load_vocab(BpeModel& m, const nlohmann::json& vocab, const std::string& where) {
  if (!vocab.is_object()) {
    throw IoError(where + ": expected a JSON object {\"token\": id, ...}; use GPT-2's encoder.json / vocab.json");
  }
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() >= (int64_t{1} << 30)) {
      throw IoError(where + ": token " + quote_token(it.key()) + " has id " + jdump(it.value()) +
                    "; ids must be integers in [0, 2^30)");
    }
    int32_t id = static_cast<int32_t>(it.value().get<int64_t>());
    if (static_cast<size_t>(id) >= m.id_to_token.size()) {
      m.id_to_token.resize(id + 1);
      m.id_used.resize(id + 1, 0);
    }
    if (m.id_used[id]) {
      throw IoError(where + ": id " + std::to_string(id) + " is used by both " + quote_token(m.id_to_token[id]) +
                    " and " + quote_token(it.key()) + "; each id must name one token");
    }
    m.id_used[id] = 1;
    m.id_to_token[id] = it.key();
    m.token_to_id[it.key()] = id;
  }
  if (m.token_to_id.empty()) throw IoError(where + ": the vocab is empty; use a GPT-2 style vocab file");
}

// Splits one merges line "a b" into ids; throws IoError naming `where` (file:line or JSON path).
std::array<int32_t, 3> resolve_merge(const BpeModel& m, const std::string& a, const std::string& b,
                                     const std::string& where) {
  std::array<int32_t, 3> r{};
  const std::string* parts[3] = {&a, &b, nullptr};
  std::string merged = a + b;
  parts[2] = &merged;
  for (int k = 0; k < 3; ++k) {
    auto it = m.token_to_id.find(*parts[k]);
    if (it == m.token_to_id.end()) {
      throw IoError(where + ": merge " + quote_token(a + " " + b) + " uses " + quote_token(*parts[k]) +
                    ", which is not in the vocab; the vocab and merges files do not belong together");
    }
    r[k] = it->second;
  }
  return r;
}

std::vector<std::array<int32_t, 3>> load_merges_txt(const BpeModel& m, const std::string& path) {
  std::string content = read_file(path);
  std::vector<std::array<int32_t, 3>> merges;
  size_t pos = 0;
  size_t line_no = 0;
  while (pos < content.size()) {
    size_t nl = content.find('\n', pos);
    if (nl == std::string::npos) nl = content.size();
    std::string line = content.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string::npos) {
      throw IoError(path + ": line " + std::to_string(line_no) + ": expected two tokens separated by one space, got " +
                    quote_token(line) +
                    "; use a GPT-2 merges.txt / vocab.bpe");
    }
    merges.push_back(resolve_merge(m, line.substr(0, sp), line.substr(sp + 1),
                                   path + ": line " + std::to_string(line_no)));
  }
  return merges;
}

void add_special(BpeModel& m, const std::string& content, int32_t id) {
  for (auto& s : m.specials) {
    if (s.first == content) return;
  }
  m.specials.emplace_back(content, id);
}

// Derived tables shared by every loader: byte symbols, decode bytes, unk / eos, merge table.
void finish(BpeModel& m, const std::vector<std::array<int32_t, 3>>& merges) {
  auto b2c = byte_to_codepoint();
  std::array<int16_t, 512>& c2b = m.c2b;
  c2b.fill(-1);
  for (int b = 0; b < 256; ++b) c2b[b2c[b]] = static_cast<int16_t>(b);

  bool missing_byte = false;
  for (int b = 0; b < 256; ++b) {
    std::string sym;
    append_utf8(sym, b2c[b]);
    auto it = m.token_to_id.find(sym);
    m.byte_id[b] = it == m.token_to_id.end() ? -1 : it->second;
    missing_byte |= m.byte_id[b] < 0;
    m.byte_char[b] = sym;
    char hex[8];
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);
    auto fb = m.token_to_id.find(hex);
    m.fallback_id[b] = fb == m.token_to_id.end() ? -1 : fb->second;
  }
  if (m.unk_id < 0 && !m.hf) {
    auto it = m.token_to_id.find("<unk>");
    if (it != m.token_to_id.end()) m.unk_id = it->second;
  }
  // tokenizer.json: tokenizers drops a byte whose symbol the vocab lacks when there is no unk token
  // (SmolLM2's vocab has no symbol for bytes that never occur in UTF-8 text, nor for a few control
  // bytes); vocab.json + merges.txt (GPT-2's encoder) has every byte.
  if (m.byte_level && missing_byte && m.unk_id < 0 && !m.hf) {
    throw IoError(m.source + ": the vocab lacks some of the 256 byte symbols and has no <unk>; "
                  "this is not a byte-level BPE vocab (use GPT-2's vocab.json / encoder.json)");
  }
  auto eos = m.token_to_id.find("<|endoftext|>");
  if (eos != m.token_to_id.end()) {
    m.eos_id = eos->second;
    if (!m.hf) add_special(m, "<|endoftext|>", m.eos_id);  // tokenizer.json: only its added_tokens are special
  }
  std::sort(m.specials.begin(), m.specials.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });

  m.id_to_bytes.resize(m.id_to_token.size());
  for (size_t id = 0; id < m.id_to_token.size(); ++id) {
    if (!m.id_used[id]) continue;
    if (!m.hf) {
      m.id_to_bytes[id] = token_bytes(m.id_to_token[id], c2b);
    } else {  // tokenizers' ByteLevel decoder: a token with any character outside the alphabet stays as it is
      bool all_in = true;
      std::string b = token_bytes(m.id_to_token[id], c2b, &all_in);
      m.id_to_bytes[id] = all_in ? b : m.id_to_token[id];
    }
  }
  for (const auto& s : m.specials) m.id_to_bytes[s.second] = s.first;  // added tokens decode literally
  m.merges.build(merges);
}

std::shared_ptr<BpeModel> load_vocab_merges(const std::string& vocab_path, const std::string& merges_path) {
  auto m = std::make_shared<BpeModel>();
  m->source = vocab_path + " + " + merges_path;
  load_vocab(*m, parse_json_file(vocab_path), vocab_path);
  auto merges = load_merges_txt(*m, merges_path);
  finish(*m, merges);
  return m;
}

std::shared_ptr<BpeModel> load_tokenizer_json(const std::string& path) {
  nlohmann::json j = parse_json_file(path);
  auto m = std::make_shared<BpeModel>();
  m->source = path;
  m->hf = true;
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) {
    throw IoError(path + ": no \"model\" object; expected a Hugging Face tokenizer.json");
  }
  const auto& model = j["model"];
  std::string type = model.value("type", std::string("BPE"));
  if (type != "BPE") {
    throw IoError(path + ": model.type: \"" + type + "\" is not supported; only BPE tokenizer.json files "
                  "(GPT-2, Llama, Qwen2, Mistral, SmolLM2 families) are, or a SentencePiece tokenizer.model");
  }
  if (!model.contains("vocab")) throw IoError(path + ": model.vocab is missing; expected a BPE tokenizer.json");
  load_vocab(*m, model["vocab"], path + ": model.vocab");
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& t : j["added_tokens"]) {
      if (!t.is_object() || !t.contains("id") || !t.contains("content") || !t["id"].is_number_integer() ||
          !t["content"].is_string() || t["id"].get<int64_t>() < 0 || t["id"].get<int64_t>() >= (int64_t{1} << 30)) {
        throw IoError(path + ": added_tokens entry " + jdump(t) + " needs an integer \"id\" and a string \"content\"");
      }
      int32_t id = static_cast<int32_t>(t["id"].get<int64_t>());
      std::string content = t["content"].get<std::string>();
      if (static_cast<size_t>(id) >= m->id_to_token.size()) {
        m->id_to_token.resize(id + 1);
        m->id_used.resize(id + 1, 0);
      }
      if (m->id_used[id] && m->id_to_token[id] != content) {
        throw IoError(path + ": added token " + quote_token(content) + " reuses id " + std::to_string(id) +
                      " of " + quote_token(m->id_to_token[id]) + "; fix added_tokens");
      }
      m->id_used[id] = 1;
      m->id_to_token[id] = content;
      m->token_to_id[content] = id;
      AddedToken a;
      a.content = content;
      a.id = id;
      auto flag = [&](const char* k, bool dflt) { return t.contains(k) && t[k].is_boolean() ? t[k].get<bool>() : dflt; };
      a.special = flag("special", false);
      a.lstrip = flag("lstrip", false);
      a.rstrip = flag("rstrip", false);
      a.single_word = flag("single_word", false);
      a.normalized = flag("normalized", !a.special);
      m->added.push_back(std::move(a));
    }
  }
  auto model_str = [&](const char* k) {
    if (!model.contains(k) || model[k].is_null()) return std::string();
    if (!model[k].is_string()) throw IoError(path + ": model." + k + ": expected a string, got " + jdump(model[k]));
    return model[k].get<std::string>();
  };
  auto model_flag = [&](const char* k) {
    if (!model.contains(k) || model[k].is_null()) return false;
    if (!model[k].is_boolean()) throw IoError(path + ": model." + k + ": expected true or false, got " + jdump(model[k]));
    return model[k].get<bool>();
  };
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (!model_str(k).empty()) {
      throw IoError(path + ": model." + k + ": " + quote_token(model_str(k)) +
                    " is not supported (no GPT-2/Llama-style tokenizer uses it); use a tokenizer without it");
    }
  }
  if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"] != 0 && model["dropout"] != 0.0) {
    throw IoError(path + ": model.dropout: " + jdump(model["dropout"]) +
                  " is not supported (BPE dropout makes encode random); set it to null");
  }
  std::string unk = model_str("unk_token");
  if (!unk.empty()) {
    auto it = m->token_to_id.find(unk);
    if (it != m->token_to_id.end()) m->unk_id = it->second;
  }
  m->byte_fallback = model_flag("byte_fallback");
  m->fuse_unk = model_flag("fuse_unk");
  m->ignore_merges = model_flag("ignore_merges");
  if (!model.contains("merges") || !model["merges"].is_array()) {
    throw IoError(path + ": model.merges is missing or not an array; expected a BPE tokenizer.json");
  }
  std::vector<std::array<int32_t, 3>> merges;
  const auto& mj = model["merges"];
  for (size_t i = 0; i < mj.size(); ++i) {
    std::string where = path + ": model.merges[" + std::to_string(i) + "]";
    const auto& e = mj[i];
    std::string a, b;
    if (e.is_string()) {  // "a b" (tokenizers < 0.20)
      const std::string& s = e.get_ref<const std::string&>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() || s.find(' ', sp + 1) != std::string::npos) {
        throw IoError(where + ": expected \"a b\", got " + jdump(e) + "; fix the merges list");
      }
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {  // ["a", "b"]
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    } else {
      throw IoError(where + ": expected \"a b\" or [\"a\", \"b\"], got " + jdump(e) + "; fix the merges list");
    }
    merges.push_back(resolve_merge(*m, a, b, where));
  }

  BpeModel& mr = *m;
  mr.pipeline = parse_pipeline(j, path, [&mr](const std::string& tok) {
    auto it = mr.token_to_id.find(tok);
    return it == mr.token_to_id.end() ? -1 : it->second;
  });
  const Pipeline& p = mr.pipeline;
  mr.byte_level = p.byte_level;
  mr.gpt2_fast = p.byte_level && p.normalizer.empty() && p.pre_tokenizer.size() == 1 &&
                 p.pre_tokenizer[0].use_regex && !p.pre_tokenizer[0].add_prefix_space;
  mr.prefix_ids = p.prefix_ids;
  mr.suffix_ids = p.suffix_ids;
  for (const auto* ids : {&p.prefix_ids, &p.suffix_ids}) {
    for (int32_t id : *ids) {
      if (id < 0 || static_cast<size_t>(id) >= mr.id_used.size() || !mr.id_used[id]) {
        throw IoError(path + ": post_processor: special token id " + std::to_string(id) +
                      " is not in the vocab; fix the template's special_tokens");
      }
    }
  }
  finish(mr, merges);

  // Added tokens: content as matched (normalized ones after the normalizer), longest first.
  mr.id_added.assign(mr.id_to_token.size(), 0);
  for (auto& a : mr.added) {
    a.match = a.normalized ? normalize(p.normalizer, a.content) : a.content;
    mr.id_added[a.id] = 1;
    if (a.match != a.content) {  // tokenizers keeps the normalized form as the token's string
      mr.added_piece[a.id] = a.match;
      bool all_in = true;
      std::string b = token_bytes(a.match, mr.c2b, &all_in);
      mr.id_to_bytes[a.id] = all_in ? b : a.match;
    }
  }
  for (const auto& a : mr.added) (a.normalized ? mr.normalized_added : mr.raw_added).push_back(&a);
  for (auto* v : {&mr.raw_added, &mr.normalized_added}) {
    std::stable_sort(v->begin(), v->end(), [](const AddedToken* x, const AddedToken* y) { return x->match.size() > y->match.size(); });
  }
  if (j.contains("padding") && j["padding"].is_object() && j["padding"].contains("pad_id") &&
      j["padding"]["pad_id"].is_number_integer()) {
    mr.pad_id = j["padding"]["pad_id"].get<int32_t>();
  }
  if (!mr.prefix_ids.empty()) mr.bos_id = mr.prefix_ids.front();
  return m;
}

// tokenizer_config.json beside a tokenizer: bos/eos/pad tokens and add_bos_token / add_eos_token, which
// (as transformers' Llama tokenizers do) replace the post-processor's template when either is given.
void apply_tokenizer_config(BpeModel& m, const std::string& path) {
  nlohmann::json c = parse_json_file(path);
  if (!c.is_object()) throw IoError(path + ": expected a JSON object");
  auto id_of = [&](const char* key) -> int32_t {
    if (!c.contains(key) || c[key].is_null()) return -2;  // not named
    std::string tok = config_token(c[key]);
    if (tok.empty()) throw IoError(path + ": " + key + ": expected a token string or {\"content\": ...}, got " + jdump(c[key]));
    auto it = m.token_to_id.find(tok);
    if (it == m.token_to_id.end()) {
      throw IoError(path + ": " + key + ": " + quote_token(tok) + " is not in the tokenizer's vocab; "
                    "the tokenizer_config.json does not belong to this tokenizer");
    }
    return it->second;
  };
  int32_t bos = id_of("bos_token"), eos = id_of("eos_token"), pad = id_of("pad_token");
  if (bos != -2) m.bos_id = bos;
  if (eos != -2) m.eos_id = eos;
  if (pad != -2) m.pad_id = pad;
  auto flag = [&](const char* key, bool* out) {
    if (!c.contains(key) || c[key].is_null()) return false;
    if (!c[key].is_boolean()) throw IoError(path + ": " + key + ": expected true or false, got " + jdump(c[key]));
    *out = c[key].get<bool>();
    return true;
  };
  bool add_bos = false, add_eos = false;
  bool has_bos = flag("add_bos_token", &add_bos);
  bool has_eos = flag("add_eos_token", &add_eos);
  if (!has_bos && !has_eos) return;
  if (add_bos && m.bos_id < 0) throw IoError(path + ": add_bos_token is true but there is no bos_token; name one");
  if (add_eos && m.eos_id < 0) throw IoError(path + ": add_eos_token is true but there is no eos_token; name one");
  if (has_bos) m.prefix_ids = add_bos ? std::vector<int32_t>{m.bos_id} : std::vector<int32_t>{};
  if (has_eos) m.suffix_ids = add_eos ? std::vector<int32_t>{m.eos_id} : std::vector<int32_t>{};
}

// Applies the merges to one piece's symbols in place. Semantics of encoder.py's bpe(): find the
// lowest-ranked adjacent pair, merge all its non-overlapping occurrences left to right, repeat.
void merge_small(const MergeTable& table, std::vector<int32_t>& w) {
  while (w.size() > 1) {
    int32_t best = INT_MAX, left = 0, right = 0, merged = 0;
    for (size_t k = 0; k + 1 < w.size(); ++k) {
      auto hit = table.find(w[k], w[k + 1]);
      if (hit.rank < best) {
        best = hit.rank;
        left = w[k];
        right = w[k + 1];
        merged = hit.merged;
      }
    }
    if (best == INT_MAX) return;
    size_t out = 0;
    for (size_t k = 0; k < w.size();) {
      if (k + 1 < w.size() && w[k] == left && w[k + 1] == right) {
        w[out++] = merged;
        k += 2;
      } else {
        w[out++] = w[k++];
      }
    }
    w.resize(out);
  }
}

// The same semantics in O(n log n) for long pieces (a run of thousands of non-space characters):
// a heap of (rank, position) over a linked list. Pairs created while merging rank r are held back
// until every occurrence of r present at the start of the pass is merged, exactly like a full pass.
void merge_large(const MergeTable& table, std::vector<int32_t>& w) {
  const int n = static_cast<int>(w.size());
  std::vector<int> prev(n), next(n);
  for (int k = 0; k < n; ++k) {
    prev[k] = k - 1;
    next[k] = k + 1 < n ? k + 1 : -1;
  }
  struct Cand {
    int32_t rank;
    int pos;       // left node
    int32_t left;  // symbols at push time: a stale entry no longer matches
    int32_t right;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto consider = [&](int p, std::vector<Cand>* sink) {
    if (p < 0 || next[p] < 0) return;
    auto hit = table.find(w[p], w[next[p]]);
    if (hit.rank == INT_MAX) return;
    Cand c{hit.rank, p, w[p], w[next[p]]};
    if (sink) {
      sink->push_back(c);
    } else {
      heap.push(c);
    }
  };
  for (int k = 0; k + 1 < n; ++k) consider(k, nullptr);
  std::vector<uint8_t> alive(n, 1);
  std::vector<Cand> pending;
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    int p = c.pos;
    if (alive[p] && next[p] >= 0 && w[p] == c.left && w[next[p]] == c.right) {
      int q = next[p];
      w[p] = table.find(c.left, c.right).merged;
      alive[q] = 0;
      next[p] = next[q];
      if (next[q] >= 0) prev[next[q]] = p;
      consider(prev[p], &pending);
      consider(p, &pending);
    }
    if (heap.empty() || heap.top().rank != c.rank) {
      for (const auto& x : pending) heap.push(x);
      pending.clear();
    }
  }
  std::vector<int32_t> out;
  for (int k = 0; k >= 0 && k < n; k = next[k]) out.push_back(w[k]);
  w.swap(out);
}

constexpr size_t kLargePiece = 64;     // symbols: above this the heap version is faster
constexpr size_t kMaxCachedPiece = 256;  // bytes: longer pieces are rare, do not cache them

void merge(const MergeTable& table, std::vector<int32_t>& w) {
  if (w.size() > kLargePiece) {
    merge_large(table, w);
  } else {
    merge_small(table, w);
  }
}

// Initial symbols of a non-byte-level piece, as tokenizers' BPE builds them: each character's id; else,
// with byte_fallback, its UTF-8 bytes' <0xXX> ids when all exist; else the unk id (consecutive unknown
// characters as one with fuse_unk; the unknown is held until the next known character, as tokenizers
// does), or nothing without an unk token.
void char_symbols(const BpeModel& m, const char* p, size_t len, std::vector<int32_t>& sym) {
  int32_t pending_unk = -1;
  std::string ch;
  for (size_t i = 0; i < len;) {
    unsigned char b0 = static_cast<unsigned char>(p[i]);
    size_t n = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 1;
    if (i + n > len) n = 1;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(p[i + k]) & 0xC0) != 0x80) n = 1;
    }
    ch.assign(p + i, n);
    i += n;
    auto it = m.token_to_id.find(ch);
    if (it != m.token_to_id.end()) {
      if (pending_unk >= 0) sym.push_back(pending_unk);
      pending_unk = -1;
      sym.push_back(it->second);
      continue;
    }
    if (m.byte_fallback) {
      bool all = true;
      for (unsigned char c : ch) all &= m.fallback_id[c] >= 0;
      if (all) {
        for (unsigned char c : ch) sym.push_back(m.fallback_id[c]);
        continue;
      }
    }
    if (m.unk_id >= 0) {
      if (pending_unk >= 0 && !m.fuse_unk) sym.push_back(pending_unk);
      pending_unk = m.unk_id;
    }
  }
  if (pending_unk >= 0) sym.push_back(pending_unk);
}

}  // namespace

// The ids of one pre-tokenized piece (bytes of the text; byte-level models map them to GPT-2's alphabet).
void piece_ids(const BpeModel& m, const char* p, size_t len, std::vector<int32_t>& sym) {
  sym.clear();
  if (m.ignore_merges) {
    std::string whole;
    if (m.byte_level) {
      for (size_t k = 0; k < len; ++k) whole += m.byte_char[static_cast<unsigned char>(p[k])];
    } else {
      whole.assign(p, len);
    }
    auto it = m.token_to_id.find(whole);
    if (it != m.token_to_id.end()) {
      sym.push_back(it->second);
      return;
    }
  }
  if (!m.byte_level) {
    char_symbols(m, p, len, sym);
    merge(m.merges, sym);
    return;
  }
  sym.resize(len);
  for (size_t k = 0; k < len; ++k) sym[k] = m.byte_id[static_cast<unsigned char>(p[k])];
  if (m.unk_id < 0) sym.erase(std::remove(sym.begin(), sym.end(), -1), sym.end());  // dropped, as tokenizers does
  merge(m.merges, sym);
  for (auto& id : sym) {
    if (id < 0) id = m.unk_id;  // a byte the vocab lacks (only possible when it has <unk>)
  }
}

}  // namespace text_detail

using text_detail::BpeCache;
using text_detail::BpeModel;

BpeTokenizer::BpeTokenizer(std::shared_ptr<const BpeModel> model)
    : model_(std::move(model)), cache_(std::make_shared<BpeCache>()) {}

BpeTokenizer BpeTokenizer::from_files(const std::string& vocab_json, const std::string& merges_txt) {
  return BpeTokenizer(text_detail::load_vocab_merges(vocab_json, merges_txt));
}

BpeTokenizer BpeTokenizer::from_dir(const std::string& dir) {
  auto in = [&](const char* name) { return dir + "/" + name; };
  std::shared_ptr<BpeModel> m;
  if (file_exists(in("tokenizer.json"))) {
    m = text_detail::load_tokenizer_json(in("tokenizer.json"));
  } else if (file_exists(in("vocab.json")) && file_exists(in("merges.txt"))) {
    m = text_detail::load_vocab_merges(in("vocab.json"), in("merges.txt"));
  } else if (file_exists(in("encoder.json")) && file_exists(in("vocab.bpe"))) {
    m = text_detail::load_vocab_merges(in("encoder.json"), in("vocab.bpe"));
  }
  if (m) {
    if (file_exists(in("tokenizer_config.json"))) text_detail::apply_tokenizer_config(*m, in("tokenizer_config.json"));
    return BpeTokenizer(m);
  }
  throw IoError(dir + ": no tokenizer.json, vocab.json + merges.txt, or encoder.json + vocab.bpe; "
                "set model.tokenizer to a GPT-2 tokenizer folder (scripts/fetch_assets.sh installs one in assets/gpt2)");
}

std::vector<int64_t> BpeTokenizer::encode(const std::string& text) const {
  const BpeModel& m = *model_;
  std::vector<int64_t> out;
  out.reserve(text.size() / 3 + 4);
  thread_local std::vector<text_detail::Char> chars;
  thread_local std::vector<int32_t> sym;
  thread_local std::vector<text_detail::ThreadCacheEntry> thread_cache(text_detail::kThreadCacheSize);

  auto encode_piece = [&](const char* p, size_t len) {
    if (len == 1 && m.byte_level) {
      int32_t id = m.byte_id[static_cast<unsigned char>(p[0])];
      if (id >= 0 || m.unk_id >= 0) out.push_back(id >= 0 ? id : m.unk_id);
      return;
    }
    const bool cacheable = len <= text_detail::kMaxCachedPiece;
    std::string key;
    BpeCache::Shard* shard = nullptr;
    text_detail::ThreadCacheEntry* local = nullptr;
    if (cacheable) {
      std::string_view piece(p, len);
      size_t h = std::hash<std::string_view>{}(piece);
      local = &thread_cache[h % text_detail::kThreadCacheSize];
      if (local->generation == cache_->generation && local->hash == h && local->key == piece) {
        out.insert(out.end(), local->ids.begin(), local->ids.end());
        return;
      }
      local->generation = 0;  // valid again once its ids are filled in below
      local->hash = h;
      local->key.assign(p, len);
      key.assign(p, len);
      shard = &cache_->shards[(h >> 7) % BpeCache::kShards];
      std::lock_guard<std::mutex> lock(shard->mu);
      auto it = shard->map.find(key);
      if (it != shard->map.end()) {
        local->ids = it->second;
        local->generation = cache_->generation;
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    text_detail::piece_ids(m, p, len, sym);
    out.insert(out.end(), sym.begin(), sym.end());
    if (cacheable) {
      local->ids = sym;
      local->generation = cache_->generation;
      std::lock_guard<std::mutex> lock(shard->mu);
      if (shard->map.size() >= BpeCache::kMaxPerShard) shard->map.clear();
      shard->map.emplace(std::move(key), sym);
    }
  };
  auto encode_segment = [&](const char* base, size_t n) {
    text_detail::pretokenize(base, n, chars, [&](size_t b, size_t e) { encode_piece(base + b, e - b); },
                             /*onig_space=*/m.hf);
  };

  if (m.hf) {  // tokenizer.json: added tokens, then the normalizer, normalized added tokens, pre-tokenizer
    thread_local std::vector<std::string> pieces;
    const auto& pl = m.pipeline;
    text_detail::split_added(text, m.raw_added, [&](size_t b, size_t e, const text_detail::AddedToken* tok) {
      if (tok) {
        out.push_back(tok->id);
        return;
      }
      if (e == b) return;  // tokenizers gives nothing for empty text (no Metaspace / Prepend of "")
      if (m.gpt2_fast && m.normalized_added.empty()) {
        encode_segment(text.data() + b, e - b);
        return;
      }
      std::string norm = text_detail::normalize(pl.normalizer, text.substr(b, e - b));
      text_detail::split_added(norm, m.normalized_added, [&](size_t b2, size_t e2, const text_detail::AddedToken* t2) {
        if (t2) {
          out.push_back(t2->id);
        } else if (e2 == b2) {
        } else if (m.gpt2_fast) {
          encode_segment(norm.data() + b2, e2 - b2);
        } else {
          pieces.clear();
          text_detail::pre_tokenize(pl.pre_tokenizer, norm.substr(b2, e2 - b2), b == 0 && b2 == 0, pieces);
          for (const auto& piece : pieces) encode_piece(piece.data(), piece.size());
        }
      });
    });
    return out;
  }

  size_t pos = 0;
  while (pos < text.size()) {
    size_t hit = std::string::npos;
    const std::pair<std::string, int32_t>* special = nullptr;
    for (const auto& s : m.specials) {  // longest first: at a tie the longer special wins
      size_t f = text.find(s.first, pos);
      if (f < hit) {
        hit = f;
        special = &s;
      }
    }
    size_t seg_end = hit == std::string::npos ? text.size() : hit;
    if (seg_end > pos) encode_segment(text.data() + pos, seg_end - pos);
    if (!special) break;
    out.push_back(special->second);
    pos = hit + special->first.size();
  }
  return out;
}

std::vector<int64_t> BpeTokenizer::encode(const std::string& text, bool add_special_tokens) const {
  if (!add_special_tokens) return encode(text);
  const BpeModel& m = *model_;
  std::vector<int64_t> out(m.prefix_ids.begin(), m.prefix_ids.end());
  std::vector<int64_t> body = encode(text);
  out.insert(out.end(), body.begin(), body.end());
  out.insert(out.end(), m.suffix_ids.begin(), m.suffix_ids.end());
  return out;
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  const BpeModel& m = *model_;
  for (int64_t id : ids) {
    if (id < 0 || id >= static_cast<int64_t>(m.id_to_token.size()) || !m.id_used[id]) {
      throw std::out_of_range("token id " + std::to_string(id) + " is not in the vocab of " + m.source + " (size " +
                              std::to_string(vocab_size()) + ")");
    }
  }
  const auto& dec = m.pipeline.decoder;
  bool bytes_only = !m.hf || (dec.size() == 1 && dec[0].kind == text_detail::DecoderStep::kByteLevel);
  std::string out;
  if (bytes_only) {
    for (int64_t id : ids) out += m.id_to_bytes[id];
    return out;
  }
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int64_t id : ids) {
    auto it = m.added_piece.find(static_cast<int32_t>(id));
    tokens.push_back(it == m.added_piece.end() ? m.id_to_token[id] : it->second);
  }
  if (!m.pipeline.has_decoder) {  // tokenizers joins the tokens with spaces
    for (size_t k = 0; k < tokens.size(); ++k) out += (k ? " " : "") + tokens[k];
    return out;
  }
  return text_detail::run_decoder(dec, std::move(tokens), [&m](const std::string& tok, std::string& bytes) {
    bool all_in = true;
    bytes = text_detail::token_bytes(tok, m.c2b, &all_in);
    return all_in;
  });
}

int64_t BpeTokenizer::eos_id() const {
  if (model_->eos_id < 0) {
    throw IoError(model_->source + ": the vocab has no <|endoftext|> token and no tokenizer_config.json eos_token; "
                  "use a tokenizer that defines one");
  }
  return model_->eos_id;
}

int64_t BpeTokenizer::bos_id() const { return model_->bos_id; }

int64_t BpeTokenizer::pad_id() const { return model_->pad_id; }

int64_t BpeTokenizer::vocab_size() const { return static_cast<int64_t>(model_->id_to_token.size()); }

std::string BpeTokenizer::token(int64_t id) const {
  if (id < 0 || id >= vocab_size() || !model_->id_used[id]) {
    throw std::out_of_range("token id " + std::to_string(id) + " is not in the vocab of " + model_->source +
                            " (size " + std::to_string(vocab_size()) + ")");
  }
  return model_->id_to_token[id];
}

int64_t BpeTokenizer::token_to_id(const std::string& token) const {
  auto it = model_->token_to_id.find(token);
  return it == model_->token_to_id.end() ? -1 : it->second;
}

const std::string& BpeTokenizer::source() const { return model_->source; }

}  // namespace rarlhf
