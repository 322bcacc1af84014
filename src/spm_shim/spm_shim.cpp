// A C-ABI shim around libsentencepiece, built as its own shared object and loaded with
// dlmopen(LM_ID_NEWLM) by src/text/sentencepiece.cpp. Why: Debian's libsentencepiece bundles
// protobuf 3.14 while LibTorch loads protobuf 3.21; linked into one process they crash at load
// time (DESIGN §5). In a separate link-map namespace each keeps its own protobuf.
// Only plain C types cross this boundary; nothing here may include torch.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {
void set_err(char* err, size_t cap, const std::string& msg) {
  if (!err || cap == 0) return;
  std::strncpy(err, msg.c_str(), cap - 1);
  err[cap - 1] = '\0';
}
}  // namespace

extern "C" {

void* rarlhf_spm_load(const char* path, char* err, size_t err_cap) {
  auto* sp = new sentencepiece::SentencePieceProcessor();
  auto status = sp->Load(path);
  if (!status.ok()) {
    set_err(err, err_cap, status.ToString());
    delete sp;
    return nullptr;
  }
  return sp;
}

void rarlhf_spm_free(void* h) { delete static_cast<sentencepiece::SentencePieceProcessor*>(h); }

// Returns the number of ids (writing at most `cap`), or -1 on error.
int64_t rarlhf_spm_encode(void* h, const char* text, size_t len, int32_t* out, int64_t cap) {
  std::vector<int> ids;
  if (!static_cast<sentencepiece::SentencePieceProcessor*>(h)->Encode(std::string(text, len), &ids).ok()) return -1;
  for (int64_t i = 0; i < static_cast<int64_t>(ids.size()) && i < cap; ++i) out[i] = ids[i];
  return static_cast<int64_t>(ids.size());
}

// Returns the byte length of the text (writing at most `cap` bytes), or -1 on error.
int64_t rarlhf_spm_decode(void* h, const int32_t* ids, int64_t n, char* out, int64_t cap) {
  std::vector<int> v(ids, ids + n);
  std::string text;
  if (!static_cast<sentencepiece::SentencePieceProcessor*>(h)->Decode(v, &text).ok()) return -1;
  std::memcpy(out, text.data(), std::min<int64_t>(cap, static_cast<int64_t>(text.size())));
  return static_cast<int64_t>(text.size());
}

int32_t rarlhf_spm_vocab_size(void* h) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(h)->GetPieceSize();
}
int32_t rarlhf_spm_special_id(void* h, int which) {  // 0 unk, 1 bos, 2 eos, 3 pad
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
  switch (which) {
    case 0: return sp->unk_id();
    case 1: return sp->bos_id();
    case 2: return sp->eos_id();
    default: return sp->pad_id();
  }
}

// The id of a piece, or -1 when the model has no such piece (PieceToId itself answers unk_id).
int32_t rarlhf_spm_piece_to_id(void* h, const char* piece, size_t len) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(h);
  std::string p(piece, len);
  int id = sp->PieceToId(p);
  if (id < 0 || (id == sp->unk_id() && sp->IdToPiece(id) != p)) return -1;
  return id;
}

// Trains a model (spm_train flags, e.g. "--input=f --model_prefix=m --vocab_size=500"); 0 = ok.
int rarlhf_spm_train(const char* args, char* err, size_t err_cap) {
  auto status = sentencepiece::SentencePieceTrainer::Train(args);
  if (!status.ok()) {
    set_err(err, err_cap, status.ToString());
    return 1;
  }
  return 0;
}

}  // extern "C"
