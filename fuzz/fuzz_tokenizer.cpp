// libFuzzer harness: the tokenizer files of a model folder. Input byte 0 picks the layout, the rest
// is split at "\n--8<--\n" into the files and a text to encode:
//   0: tokenizer.json | tokenizer_config.json | text        (load_tokenizer)
//   1: vocab.json | merges.txt | tokenizer_config.json | text (load_tokenizer)
//   2: encoder.json | vocab.bpe | text                       (load_tokenizer)
//   3: vocab.txt | text                                      (WordPieceTokenizer, BERT options)
// A tokenizer that loads must encode the text (with and without special tokens) to ids that decode
// without std::out_of_range, i.e. every id it emits is in its vocab.
#include <sys/stat.h>

#include "fuzz/fuzz_support.h"
#include "rarlhf/text/tokenizer.h"
#include "rarlhf/text/wordpiece.h"

namespace {

std::string put_in(const std::string& dir, const std::string& name, std::string_view bytes) {
  mkdir((rarlhf::fuzz::scratch_dir() + "/" + dir).c_str(), 0700);
  return rarlhf::fuzz::put_file(dir + "/" + name, bytes);
}

// tokenizer_config.json is optional: an empty part means the folder has none.
void put_optional(const std::string& dir, const std::string& name, std::string_view bytes) {
  if (bytes.empty()) rarlhf::fuzz::drop_file(dir + "/" + name);
  else put_in(dir, name, bytes);
}

void exercise(const rarlhf::Tokenizer& tok, const std::string& text) {
  const std::vector<int64_t> plain = tok.encode(text);
  const std::vector<int64_t> special = tok.encode(text, true);
  try {
    tok.decode(plain);
    tok.decode(special);
  } catch (const std::out_of_range& e) {
    rarlhf::fuzz::finding(std::string("encode emitted an id decode rejects: ") + e.what());
  }
  tok.token_to_id(text);
  tok.bos_id();
  tok.pad_id();
  tok.vocab_size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rarlhf;
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const int mode = data[0] % 4;
  const std::string dir = "t" + std::to_string(mode);
  fuzz::expect_clean([&] {
    switch (mode) {
      case 0: {
        auto p = fuzz::split_parts(rest, 3);
        put_in(dir, "tokenizer.json", p[0]);
        put_optional(dir, "tokenizer_config.json", p[1]);
        exercise(*load_tokenizer(fuzz::scratch_dir() + "/" + dir), std::string(p[2]));
        break;
      }
      case 1: {
        auto p = fuzz::split_parts(rest, 4);
        put_in(dir, "vocab.json", p[0]);
        put_in(dir, "merges.txt", p[1]);
        put_optional(dir, "tokenizer_config.json", p[2]);
        exercise(*load_tokenizer(fuzz::scratch_dir() + "/" + dir), std::string(p[3]));
        break;
      }
      case 2: {
        auto p = fuzz::split_parts(rest, 3);
        put_in(dir, "encoder.json", p[0]);
        put_in(dir, "vocab.bpe", p[1]);
        exercise(*load_tokenizer(fuzz::scratch_dir() + "/" + dir), std::string(p[2]));
        break;
      }
      default: {
        auto p = fuzz::split_parts(rest, 2);
        const std::string vocab = put_in(dir, "vocab.txt", p[0]);
        WordPieceOptions opts;
        const WordPieceTokenizer wp = WordPieceTokenizer::from_vocab_file(vocab, opts);
        const std::vector<int64_t> ids = wp.encode(std::string(p[1]));
        for (int64_t id : ids) {
          if (id < 0 || id >= wp.vocab_size()) fuzz::finding("WordPiece emitted id " + std::to_string(id));
        }
        break;
      }
    }
  });
  return 0;
}
