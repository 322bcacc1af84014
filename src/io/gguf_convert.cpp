// `rarlhf convert --gguf`: a Hugging Face model directory from a GGUF file (include/rarlhf/io/gguf.h).
// Names and layout follow llama.cpp's converter (convert_hf_to_gguf.py, gguf-py's tensor_mapping.py)
// read backwards; transformers' own GGUF loader (integrations/ggml.py) is the test oracle.
#include <ATen/ops/stack.h>

#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/strings.h"
#include "rarlhf/io/gguf.h"
#include "rarlhf/io/safetensors.h"

namespace rarlhf {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// llama-vocab.cpp's regexes for tokenizer.ggml.pre, as tokenizers spells them.
const char* kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
const char* kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";

json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

json split_regex(const char* re) {
  return {{"type", "Split"}, {"pattern", {{"Regex", re}}}, {"behavior", "Isolated"}, {"invert", false}};
}

// GGUF token types (llama.h llama_token_type): 1 normal, 2 unknown, 3 control, 4 user-defined,
// 5 unused, 6 byte.
constexpr int64_t kControl = 3, kUserDefined = 4;

const json& string_array(const GgufFile& f, const std::string& key) {
  const json& a = f.at(key);
  if (!a.is_array()) throw IoError(f.path() + ": metadata " + key + " is not an array");
  for (const auto& v : a)
    if (!v.is_string()) throw IoError(f.path() + ": metadata " + key + " holds a non-string");
  return a;
}

int64_t token_id(const GgufFile& f, const std::string& key, int64_t vocab) {
  if (!f.has(key)) return -1;
  const uint64_t id = f.get_uint(key);
  if (id >= static_cast<uint64_t>(vocab))
    throw IoError(f.path() + ": metadata " + key + " = " + std::to_string(id) + " is not below the vocabulary size " +
                  std::to_string(vocab));
  return static_cast<int64_t>(id);
}

// The llama.cpp tensor name of a block's weight -> the Hugging Face name (Llama/Qwen2 layout).
const std::map<std::string, std::string> kBlockNames = {
    {"attn_norm", "input_layernorm"},       {"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},         {"attn_output", "self_attn.o_proj"},
    {"ffn_norm", "post_attention_layernorm"}, {"ffn_gate", "mlp.gate_proj"}, {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

// Undoes convert_hf_to_gguf.py's LlamaModel.permute (which interleaves each head's two rotate-half
// halves for llama.cpp's rope): rows [h][i][two] back to [h][two][i].
at::Tensor unpermute(const at::Tensor& w, int64_t n_head) {
  const int64_t rows = w.size(0);
  std::vector<int64_t> shape = {n_head, rows / n_head / 2, 2};
  for (int64_t d = 1; d < w.dim(); ++d) shape.push_back(w.size(d));
  return w.reshape(shape).transpose(1, 2).reshape(w.sizes()).contiguous();
}

}  // namespace

json gguf_tokenizer_json(const GgufFile& f) {
  const std::string model = f.get_string("tokenizer.ggml.model");
  if (model != "gpt2") {
    throw IoError(f.path() + ": metadata tokenizer.ggml.model is \"" + excerpt(model) +
                  "\"; only \"gpt2\" (byte-level BPE) is converted: for a SentencePiece model (\"llama\") give the "
                  "original tokenizer.json or tokenizer.model with model.tokenizer");
  }
  const json& tokens = string_array(f, "tokenizer.ggml.tokens");
  const json& merges = string_array(f, "tokenizer.ggml.merges");
  const int64_t vocab = static_cast<int64_t>(tokens.size());
  std::vector<int64_t> types(tokens.size(), 1);
  if (f.has("tokenizer.ggml.token_type")) {
    const json& t = f.at("tokenizer.ggml.token_type");
    if (!t.is_array() || t.size() != tokens.size())
      throw IoError(f.path() + ": metadata tokenizer.ggml.token_type is not an array of one type per token (" +
                    std::to_string(tokens.size()) + ")");
    for (size_t i = 0; i < t.size(); ++i) {
      if (!t[i].is_number_integer()) throw IoError(f.path() + ": metadata tokenizer.ggml.token_type holds a non-integer");
      types[i] = t[i].get<int64_t>();
    }
  }
  const std::string pre = f.has("tokenizer.ggml.pre") ? f.get_string("tokenizer.ggml.pre") : "default";
  json pre_tok, normalizer = nullptr;
  bool ignore_merges = false;
  if (pre == "default" || pre == "gpt2") {
    pre_tok = byte_level(true);
  } else if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "command-r" || pre == "codeshell") {
    pre_tok = {{"type", "Sequence"},
               {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level(true)}}};
  } else if (pre == "llama-bpe" || pre == "llama3") {
    pre_tok = {{"type", "Sequence"}, {"pretokenizers", {split_regex(kLlama3Regex), byte_level(false)}}};
    ignore_merges = true;
  } else if (pre == "qwen2") {
    pre_tok = {{"type", "Sequence"}, {"pretokenizers", {split_regex(kQwen2Regex), byte_level(false)}}};
    normalizer = {{"type", "NFC"}};
  } else {
    throw IoError(f.path() + ": metadata tokenizer.ggml.pre is \"" + excerpt(pre) +
                  "\", a pre-tokenizer rarlhf does not convert (converted: default, gpt2, smollm, starcoder, refact, "
                  "command-r, codeshell, llama-bpe, qwen2); give the model's own tokenizer.json with model.tokenizer");
  }
  json vocab_json = json::object();
  json added = json::array();
  std::set<std::string> seen;
  for (int64_t i = 0; i < vocab; ++i) {
    const std::string& tok = tokens[i].get_ref<const std::string&>();
    if (!seen.insert(tok).second) throw IoError(f.path() + ": metadata tokenizer.ggml.tokens holds \"" + excerpt(tok) + "\" twice");
    vocab_json[tok] = i;
    if (types[i] == kControl || types[i] == kUserDefined) {
      added.push_back({{"id", i}, {"content", tok}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                       {"normalized", types[i] == kUserDefined}, {"special", types[i] == kControl}});
    }
  }
  json merges_json = json::array();
  for (const auto& m : merges) {
    const std::string& s = m.get_ref<const std::string&>();
    const size_t sp = s.find(' ', 1);  // a merge is "left right"; a left part never starts with ' ' (byte-level)
    if (sp == std::string::npos || sp + 1 >= s.size())
      throw IoError(f.path() + ": metadata tokenizer.ggml.merges holds \"" + excerpt(s) + "\", not \"left right\"");
    merges_json.push_back(json::array({s.substr(0, sp), s.substr(sp + 1)}));
  }
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", normalizer},
          {"pre_tokenizer", pre_tok},
          {"post_processor", nullptr},
          {"decoder", byte_level(true)},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
            {"ignore_merges", ignore_merges}, {"vocab", vocab_json}, {"merges", merges_json}}}};
}

json gguf_tokenizer_config(const GgufFile& f) {
  const json& tokens = string_array(f, "tokenizer.ggml.tokens");
  const int64_t vocab = static_cast<int64_t>(tokens.size());
  json c = {{"tokenizer_class", "PreTrainedTokenizerFast"}};
  auto name = [&](const char* key, const char* field) {
    const int64_t id = token_id(f, key, vocab);
    c[field] = id >= 0 ? json(tokens[id]) : json(nullptr);
  };
  name("tokenizer.ggml.bos_token_id", "bos_token");
  name("tokenizer.ggml.eos_token_id", "eos_token");
  name("tokenizer.ggml.padding_token_id", "pad_token");
  name("tokenizer.ggml.unknown_token_id", "unk_token");
  c["add_bos_token"] = f.has("tokenizer.ggml.add_bos_token") && f.at("tokenizer.ggml.add_bos_token").is_boolean()
                           ? f.at("tokenizer.ggml.add_bos_token").get<bool>()
                           : false;
  c["add_eos_token"] = f.has("tokenizer.ggml.add_eos_token") && f.at("tokenizer.ggml.add_eos_token").is_boolean()
                           ? f.at("tokenizer.ggml.add_eos_token").get<bool>()
                           : false;
  if (f.has("tokenizer.chat_template") && f.at("tokenizer.chat_template").is_string())
    c["chat_template"] = f.at("tokenizer.chat_template");
  return c;
}

std::string convert_gguf(const std::string& gguf_path, const std::string& out_dir, const GgufConvertOptions& opt) {
  at::ScalarType dtype;
  if (opt.dtype == "float32") dtype = at::kFloat;
  else if (opt.dtype == "bfloat16") dtype = at::kBFloat16;
  else if (opt.dtype == "float16") dtype = at::kHalf;
  else throw ConfigError("--dtype: \"" + opt.dtype + "\" is not float32, bfloat16 or float16");
  if (fs::exists(out_dir) && !fs::is_empty(out_dir))
    throw ConfigError("--out " + out_dir + ": exists and is not empty; choose a new folder");

  const GgufFile f(gguf_path);
  const std::string arch = f.get_string("general.architecture");
  if (arch != "llama" && arch != "qwen2") {
    throw IoError(gguf_path + ": metadata general.architecture is \"" + excerpt(arch) +
                  "\"; rarlhf converts llama (Llama, Mistral, SmolLM2) and qwen2 GGUF files");
  }
  const std::string k = arch + ".";
  for (const char* unsupported : {"expert_count", "attention.sliding_window"}) {
    if (f.has(k + unsupported))
      throw IoError(gguf_path + ": metadata " + k + unsupported + " is set: mixture-of-experts / sliding-window "
                    "attention models are not converted");
  }
  const int64_t hidden = static_cast<int64_t>(f.get_uint(k + "embedding_length"));
  const int64_t layers = static_cast<int64_t>(f.get_uint(k + "block_count"));
  const int64_t inter = static_cast<int64_t>(f.get_uint(k + "feed_forward_length"));
  const int64_t heads = static_cast<int64_t>(f.get_uint(k + "attention.head_count"));
  const int64_t kv_heads = f.has(k + "attention.head_count_kv") ? static_cast<int64_t>(f.get_uint(k + "attention.head_count_kv")) : heads;
  if (hidden <= 0 || layers <= 0 || inter <= 0 || heads <= 0 || kv_heads <= 0 || heads % kv_heads != 0)
    throw IoError(gguf_path + ": metadata " + k + "* gives an impossible shape (hidden " + std::to_string(hidden) +
                  ", heads " + std::to_string(heads) + ", KV heads " + std::to_string(kv_heads) + ")");
  const int64_t head_dim = f.has(k + "attention.key_length") ? static_cast<int64_t>(f.get_uint(k + "attention.key_length"))
                                                             : hidden / heads;
  if (f.has(k + "attention.value_length") && static_cast<int64_t>(f.get_uint(k + "attention.value_length")) != head_dim)
    throw IoError(gguf_path + ": metadata " + k + "attention.value_length differs from the key length; not converted");
  if (f.has(k + "rope.dimension_count") && static_cast<int64_t>(f.get_uint(k + "rope.dimension_count")) != head_dim)
    throw IoError(gguf_path + ": metadata " + k + "rope.dimension_count " + std::to_string(f.get_uint(k + "rope.dimension_count")) +
                  " is not the head size " + std::to_string(head_dim) + " (partial rotary is not converted)");
  json rope_scaling = nullptr;
  if (f.has(k + "rope.scaling.type")) {
    const std::string type = f.get_string(k + "rope.scaling.type");
    if (type == "linear") {
      rope_scaling = {{"rope_type", "linear"}, {"factor", f.get_float(k + "rope.scaling.factor")}};
    } else if (type != "none") {
      throw IoError(gguf_path + ": metadata " + k + "rope.scaling.type \"" + excerpt(type) + "\" is not converted (linear only)");
    }
  }
  if (f.find("rope_freqs.weight"))
    throw IoError(gguf_path + ": tensor rope_freqs.weight (Llama 3.1-style rope scaling factors) is not converted");

  const json tokenizer = gguf_tokenizer_json(f);
  const json tok_config = gguf_tokenizer_config(f);
  const int64_t n_tokens = static_cast<int64_t>(tokenizer["model"]["vocab"].size());

  // Weights, llama.cpp names -> Hugging Face names; any other tensor is an error, never dropped.
  std::vector<std::pair<std::string, at::Tensor>> weights;
  bool tied = true;
  int64_t vocab = 0;
  const std::regex block_re(R"(blk\.(\d+)\.([a-z_]+)\.(weight|bias))");
  for (const auto& t : f.tensors()) {
    std::string name;
    at::Tensor w = f.dequantize(t);
    std::smatch m;
    if (t.name == "token_embd.weight") {
      name = "model.embed_tokens.weight";
      vocab = w.size(0);
    } else if (t.name == "output_norm.weight") {
      name = "model.norm.weight";
    } else if (t.name == "output.weight") {
      name = "lm_head.weight";
      tied = false;
    } else if (std::regex_match(t.name, m, block_re) && kBlockNames.count(m[2]) &&
               std::stoll(m[1]) < layers) {
      name = "model.layers." + m[1].str() + "." + kBlockNames.at(m[2]) + "." + m[3].str();
      if (arch == "llama" && (m[2] == "attn_q" || m[2] == "attn_k"))
        w = unpermute(w, m[2] == "attn_q" ? heads : kv_heads);
    } else {
      throw IoError(gguf_path + ": tensor " + excerpt(t.name) + " has no place in a " + arch +
                    " model (expected token_embd, output_norm, output, blk.N.{attn_norm,attn_q,attn_k,attn_v,"
                    "attn_output,ffn_norm,ffn_gate,ffn_up,ffn_down})");
    }
    weights.emplace_back(name, w.to(dtype));
  }
  if (vocab == 0) throw IoError(gguf_path + ": no tensor token_embd.weight");
  if (vocab != n_tokens)
    throw IoError(gguf_path + ": token_embd.weight has " + std::to_string(vocab) + " rows but tokenizer.ggml.tokens " +
                  std::to_string(n_tokens) + " tokens");
  if (f.has(k + "vocab_size") && static_cast<int64_t>(f.get_uint(k + "vocab_size")) != vocab)
    throw IoError(gguf_path + ": metadata " + k + "vocab_size differs from token_embd.weight's " + std::to_string(vocab) + " rows");

  json config = {{"architectures", {arch == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
                 {"model_type", arch},
                 {"hidden_size", hidden},
                 {"intermediate_size", inter},
                 {"num_hidden_layers", layers},
                 {"num_attention_heads", heads},
                 {"num_key_value_heads", kv_heads},
                 {"head_dim", head_dim},
                 {"hidden_act", "silu"},
                 {"max_position_embeddings", f.has(k + "context_length") ? f.get_uint(k + "context_length") : 2048},
                 {"rms_norm_eps", f.has(k + "attention.layer_norm_rms_epsilon")
                                      ? f.get_float(k + "attention.layer_norm_rms_epsilon") : 1e-6},
                 {"rope_theta", f.has(k + "rope.freq_base") ? f.get_float(k + "rope.freq_base") : 10000.0},
                 {"rope_scaling", rope_scaling},
                 {"vocab_size", vocab},
                 {"tie_word_embeddings", tied},
                 {"initializer_range", 0.02},
                 {"use_cache", true},
                 {"torch_dtype", opt.dtype}};
  if (arch == "llama") {
    config["attention_bias"] = f.find("blk.0.attn_q.bias") != nullptr;
    config["mlp_bias"] = false;
  } else {
    config["use_sliding_window"] = false;
  }
  json gen = {{"_from_model_config", true}};
  for (const auto& [key, field] : std::vector<std::pair<std::string, std::string>>{
           {"tokenizer.ggml.bos_token_id", "bos_token_id"}, {"tokenizer.ggml.eos_token_id", "eos_token_id"},
           {"tokenizer.ggml.padding_token_id", "pad_token_id"}}) {
    const int64_t id = token_id(f, key, vocab);
    if (id >= 0) config[field] = gen[field] = id;
  }
  json source = {{"gguf", fs::absolute(gguf_path).string()},
                 {"general.name", f.has("general.name") ? f.at("general.name") : json(nullptr)},
                 {"general.architecture", arch},
                 {"tokenizer.ggml.pre", f.has("tokenizer.ggml.pre") ? f.at("tokenizer.ggml.pre") : json(nullptr)},
                 {"file_type", f.has("general.file_type") ? f.at("general.file_type") : json(nullptr)},
                 {"dtype", opt.dtype},
                 {"tensors", f.tensors().size()}};
  json types = json::object();
  for (const auto& t : f.tensors()) types[ggml_type_name(t.type)] = types.value(ggml_type_name(t.type), 0) + 1;
  source["tensor_types"] = types;

  // Everything into a temp folder beside out_dir, renamed at the end: nothing half written.
  const fs::path out = fs::absolute(out_dir).lexically_normal();
  const fs::path tmp = out.parent_path() / (".tmp-convert-" + out.filename().string());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  make_dirs(tmp.string());
  try {
    save_safetensors((tmp / "model.safetensors").string(), weights, {{"format", "pt"}});
    write_file_atomic((tmp / "config.json").string(), config.dump(2) + "\n");
    write_file_atomic((tmp / "generation_config.json").string(), gen.dump(2) + "\n");
    write_file_atomic((tmp / "tokenizer.json").string(), tokenizer.dump() + "\n");
    write_file_atomic((tmp / "tokenizer_config.json").string(), tok_config.dump(2) + "\n");
    write_file_atomic((tmp / "rarlhf_convert.json").string(), source.dump(2) + "\n");
    if (fs::exists(out)) fs::remove(out);  // an empty folder (checked above)
    fs::rename(tmp, out);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  int64_t params = 0;
  for (const auto& [n, w] : weights) params += w.numel();
  return out.string() + ": " + arch + ", " + std::to_string(layers) + " layers, hidden " + std::to_string(hidden) + ", " +
         std::to_string(heads) + "/" + std::to_string(kv_heads) + " heads, vocab " + std::to_string(vocab) + ", " +
         std::to_string(params) + " parameters in " + opt.dtype + (tied ? " (tied head)" : "");
}

}  // namespace rarlhf
