// SentencePieceTokenizer: loads librarlhf_spm_shim.so into its own link-map namespace (dlmopen)
// and calls its C functions. See include/rarlhf/text/sentencepiece.h for why.
#include "rarlhf/text/sentencepiece.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <mutex>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"

#ifndef RARLHF_SPM_SHIM_PATH
#define RARLHF_SPM_SHIM_PATH ""
#endif

namespace rarlhf {

namespace {

struct ShimApi {
  void* lib = nullptr;
  std::string error;
  void* (*load)(const char*, char*, size_t) = nullptr;
  void (*free)(void*) = nullptr;
  int64_t (*encode)(void*, const char*, size_t, int32_t*, int64_t) = nullptr;
  int64_t (*decode)(void*, const int32_t*, int64_t, char*, int64_t) = nullptr;
  int32_t (*vocab_size)(void*) = nullptr;
  int32_t (*special_id)(void*, int) = nullptr;
  int32_t (*piece_to_id)(void*, const char*, size_t) = nullptr;
  int (*train)(const char*, char*, size_t) = nullptr;
};

std::string exe_dir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, n);
  return p.substr(0, p.rfind('/'));
}

// Loaded once per process: RARLHF_SPM_SHIM, then the build-time path, then beside the binary.
const ShimApi& shim() {
  static ShimApi api;
  static std::once_flag once;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("RARLHF_SPM_SHIM")) candidates.emplace_back(env);
    if (std::string(RARLHF_SPM_SHIM_PATH).size()) candidates.emplace_back(RARLHF_SPM_SHIM_PATH);
    candidates.push_back(exe_dir() + "/librarlhf_spm_shim.so");
    for (const auto& path : candidates) {
      if (!file_exists(path)) continue;
      api.lib = dlmopen(LM_ID_NEWLM, path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!api.lib) {
        api.error = path + ": " + dlerror();
        continue;
      }
      break;
    }
    if (!api.lib) {
      if (api.error.empty()) {
        api.error = "librarlhf_spm_shim.so not found; install libsentencepiece-dev and rebuild "
                    "(scripts/setup.sh), or set RARLHF_SPM_SHIM to the shim's path";
      }
      return;
    }
    auto sym = [&](const char* name) {
      void* p = dlsym(api.lib, name);
      if (!p) api.error = std::string("SentencePiece shim lacks ") + name;
      return p;
    };
    api.load = reinterpret_cast<decltype(api.load)>(sym("rarlhf_spm_load"));
    api.free = reinterpret_cast<decltype(api.free)>(sym("rarlhf_spm_free"));
    api.encode = reinterpret_cast<decltype(api.encode)>(sym("rarlhf_spm_encode"));
    api.decode = reinterpret_cast<decltype(api.decode)>(sym("rarlhf_spm_decode"));
    api.vocab_size = reinterpret_cast<decltype(api.vocab_size)>(sym("rarlhf_spm_vocab_size"));
    api.special_id = reinterpret_cast<decltype(api.special_id)>(sym("rarlhf_spm_special_id"));
    api.train = reinterpret_cast<decltype(api.train)>(sym("rarlhf_spm_train"));
    api.piece_to_id = reinterpret_cast<decltype(api.piece_to_id)>(sym("rarlhf_spm_piece_to_id"));
    if (!api.error.empty()) api.lib = nullptr;
  });
  if (!api.lib) throw IoError("SentencePiece support unavailable: " + api.error);
  return api;
}

}  // namespace

struct SentencePieceTokenizer::Impl {
  void* handle = nullptr;
  std::string path;
  ~Impl() {
    if (handle) shim().free(handle);
  }
};

bool SentencePieceTokenizer::available() {
  try {
    shim();
    return true;
  } catch (const IoError&) {
    return false;
  }
}

SentencePieceTokenizer SentencePieceTokenizer::from_file(const std::string& model_path) {
  const ShimApi& api = shim();
  if (!file_exists(model_path)) throw IoError(model_path + ": no such SentencePiece model file");
  char err[512] = {0};
  void* h = api.load(model_path.c_str(), err, sizeof err);
  if (!h) throw IoError(model_path + ": not a SentencePiece model (" + err + ")");
  SentencePieceTokenizer t;
  t.impl_ = std::make_shared<Impl>();
  t.impl_->handle = h;
  t.impl_->path = model_path;
  return t;
}

std::vector<int64_t> SentencePieceTokenizer::encode(const std::string& text) const {
  const ShimApi& api = shim();
  std::vector<int32_t> buf(text.size() + 16);
  int64_t n = api.encode(impl_->handle, text.data(), text.size(), buf.data(), buf.size());
  if (n < 0) throw IoError(impl_->path + ": SentencePiece encode failed");
  if (n > static_cast<int64_t>(buf.size())) {
    buf.resize(n);
    n = api.encode(impl_->handle, text.data(), text.size(), buf.data(), buf.size());
  }
  return std::vector<int64_t>(buf.begin(), buf.begin() + n);
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids) const {
  const ShimApi& api = shim();
  const int64_t vs = vocab_size();
  std::vector<int32_t> v;
  v.reserve(ids.size());
  for (int64_t id : ids) {
    if (id < 0 || id >= vs) {
      throw ConfigError(impl_->path + ": token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                        std::to_string(vs) + ")");
    }
    v.push_back(static_cast<int32_t>(id));
  }
  std::string out(ids.size() * 8 + 16, '\0');
  int64_t n = api.decode(impl_->handle, v.data(), v.size(), out.data(), out.size());
  if (n < 0) throw IoError(impl_->path + ": SentencePiece decode failed");
  if (n > static_cast<int64_t>(out.size())) {
    out.resize(n);
    n = api.decode(impl_->handle, v.data(), v.size(), out.data(), out.size());
  }
  out.resize(n);
  return out;
}

int64_t SentencePieceTokenizer::vocab_size() const { return shim().vocab_size(impl_->handle); }
int64_t SentencePieceTokenizer::eos_id() const { return shim().special_id(impl_->handle, 2); }
int64_t SentencePieceTokenizer::unk_id() const { return shim().special_id(impl_->handle, 0); }
int64_t SentencePieceTokenizer::bos_id() const { return shim().special_id(impl_->handle, 1); }
int64_t SentencePieceTokenizer::pad_id() const { return shim().special_id(impl_->handle, 3); }
int64_t SentencePieceTokenizer::token_to_id(const std::string& piece) const {
  return shim().piece_to_id(impl_->handle, piece.data(), piece.size());
}
const std::string& SentencePieceTokenizer::path() const { return impl_->path; }

void SentencePieceTokenizer::train(const std::string& args) {
  char err[512] = {0};
  if (shim().train(args.c_str(), err, sizeof err) != 0) throw IoError(std::string("spm_train: ") + err);
}

}  // namespace rarlhf
