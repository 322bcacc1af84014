// Decoder-family reward models against transformers' *ForSequenceClassification (fixtures from
// scripts/make_parity_fixtures.py): the logit read at the last non-pad token of right-padded rows, and
// of left-padded rows with positions counted from the mask (transformers' logits given those
// position ids); the factory picks the decoder path from config.json's model_type.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/io/safetensors.h"
#include "rarlhf/model/decoder_classifier.h"
#include "rarlhf/reward/reward.h"

using namespace rarlhf;
namespace fsys = std::filesystem;

namespace {

const std::string kRoot = std::string(RARLHF_SOURCE_DIR) + "/tests/fixtures/parity/";

class DecoderClassifierParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = kRoot + GetParam();
    if (!fsys::exists(dir_ + "/expected.safetensors")) GTEST_SKIP() << dir_ << " missing";
    expected_ = load_safetensors(dir_ + "/expected.safetensors");
  }
  std::string dir_;
  TensorMap expected_;
};

float max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<float>(); }

}  // namespace

TEST_P(DecoderClassifierParity, RightPaddedRowsScoreAtTheLastToken) {
  auto m = DecoderClassifier::load(dir_ + "/model", torch::kCPU);
  EXPECT_TRUE(DecoderClassifier::is_decoder_dir(dir_ + "/model"));
  auto logits = m.forward(expected_.at("input_ids"), expected_.at("attention_mask"));
  ASSERT_EQ(logits.sizes(), expected_.at("logits").sizes());
  EXPECT_LE(max_diff(logits, expected_.at("logits")), 1e-5f);
}

TEST_P(DecoderClassifierParity, LeftPaddedRowsWithMaskPositions) {
  auto m = DecoderClassifier::load(dir_ + "/model", torch::kCPU);
  auto logits = m.forward(expected_.at("left.input_ids"), expected_.at("left.attention_mask"));
  EXPECT_LE(max_diff(logits, expected_.at("left.logits_pos")), 1e-5f);
  // Same texts, either padding: the same scores.
  EXPECT_LE(max_diff(logits, expected_.at("logits")), 1e-5f);
}

INSTANTIATE_TEST_SUITE_P(Families, DecoderClassifierParity, ::testing::Values("llama_cls", "gpt2_cls", "neox_cls"));

TEST(DecoderClassifier, BertDirectoryIsNotADecoder) {
  EXPECT_FALSE(DecoderClassifier::is_decoder_dir(kRoot + "bert_tiny/model"));
}

TEST(DecoderClassifier, CausalLmCheckpointIsRefusedAsARewardModel) {
  if (!fsys::exists(kRoot + "llama_gqa/model")) GTEST_SKIP();
  try {
    DecoderClassifier::load(kRoot + "llama_gqa/model", torch::kCPU);
    FAIL() << "accepted";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("no 'score.weight'"), std::string::npos) << e.what();
  }
}

TEST(DecoderClassifier, MissingPadTokenIdNamesTheKey) {
  if (!fsys::exists(kRoot + "llama_cls/model")) GTEST_SKIP();
  const std::string dir = fsys::temp_directory_path() / "rarlhf_dec_cls_nopad";
  fsys::remove_all(dir);
  fsys::create_directories(dir);
  fsys::copy_file(kRoot + "llama_cls/model/model.safetensors", dir + "/model.safetensors");
  auto cfg = nlohmann::json::parse(read_file(kRoot + "llama_cls/model/config.json"));
  cfg.erase("pad_token_id");
  std::ofstream(dir + "/config.json") << cfg.dump();
  try {
    DecoderClassifier::load(dir, torch::kCPU);
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("pad_token_id"), std::string::npos) << e.what();
  }
  fsys::remove_all(dir);
}
