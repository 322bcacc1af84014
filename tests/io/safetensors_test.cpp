// safetensors reader/writer: round trips over every dtype, the on-disk layout (length prefix,
// 8-byte aligned space padding, __metadata__), the shared HF fixtures, and hand-corrupted files
// which must each raise IoError naming the problem (never crash).
#include "rarlhf/io/safetensors.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"

namespace fs = std::filesystem;
using rarlhf::IoError;

namespace {

std::string temp_dir() {
  auto d = fs::temp_directory_path() / ("rarlhf_st_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d.string();
}

// Writes an arbitrary header + data region, so tests can produce malformed files.
std::string write_raw(const std::string& name, const std::string& header, const std::string& data,
                      int64_t len_override = -1) {
  std::string path = temp_dir() + "/" + name;
  std::ofstream os(path, std::ios::binary);
  uint64_t n = len_override >= 0 ? static_cast<uint64_t>(len_override) : header.size();
  for (int i = 0; i < 8; ++i) os.put(static_cast<char>((n >> (8 * i)) & 0xff));
  os << header << data;
  return path;
}

void expect_io_error(const std::string& path, const std::string& needle) {
  try {
    rarlhf::load_safetensors(path);
    FAIL() << "no error for " << path;
  } catch (const IoError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "'" << needle << "' not in: " << msg;
  }
}


TEST(Safetensors, RoundTripEveryDtype) {
  std::vector<std::pair<std::string, at::Tensor>> ts = {
      {"f32", torch::randn({3, 5})},
      {"f64", torch::randn({2, 2}, torch::kDouble)},
      {"f16", torch::randn({7}).to(torch::kHalf)},
      {"bf16", torch::randn({4, 1, 3}).to(torch::kBFloat16)},
      {"i64", torch::arange(-5, 6, torch::kLong)},
      {"i32", torch::arange(0, 9, torch::kInt).reshape({3, 3})},
      {"u8", torch::arange(250, 256, torch::kLong).to(torch::kByte)},
      {"b", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(3.5f)},
      {"empty", torch::zeros({0, 4})},
      {"noncontig", torch::randn({4, 6}).t()},
  };
  std::string path = temp_dir() + "/rt.safetensors";
  rarlhf::save_safetensors(path, ts);
  auto back = rarlhf::load_safetensors(path);
  ASSERT_EQ(back.size(), ts.size());
  for (const auto& [name, t] : ts) {
    ASSERT_TRUE(back.count(name)) << name;
    const auto& b = back.at(name);
    EXPECT_EQ(b.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(b.sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(b, t)) << name;
  }
  // Loaded tensors are writable without touching the file (copy-on-write mapping).
  back.at("f32").fill_(0);
  EXPECT_TRUE(torch::equal(rarlhf::load_safetensors(path).at("f32"), ts[0].second));
}

TEST(Safetensors, OnDiskLayout) {
  std::string path = temp_dir() + "/layout.safetensors";
  auto a = torch::tensor({1.0f, 2.0f});
  rarlhf::save_safetensors(path, {{"b_second", a}, {"a_first", torch::tensor({int64_t{7}})}});
  std::string bytes = rarlhf::read_file(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 8 + 8);
  std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.back() == ' ' || header.back() == '}', true);
  auto j = nlohmann::json::parse(header);
  EXPECT_EQ(j["__metadata__"]["format"], "pt");
  EXPECT_EQ(j["b_second"]["dtype"], "F32");
  EXPECT_EQ(j["b_second"]["data_offsets"], nlohmann::json::array({0, 8}));  // written in the given order
  EXPECT_EQ(j["a_first"]["data_offsets"], nlohmann::json::array({8, 16}));
  float f[2];
  std::memcpy(f, bytes.data() + 8 + n, 8);
  EXPECT_EQ(f[0], 1.0f);
  EXPECT_EQ(f[1], 2.0f);
  EXPECT_EQ(rarlhf::load_safetensors_metadata(path).at("format"), "pt");
}

TEST(Safetensors, LoadsHfFixtures) {
  const std::string data = std::string(RARLHF_SOURCE_DIR) + "/../shared/data/";
  if (!fs::exists(data + "fake-gpt2-hf")) GTEST_SKIP() << data << " missing (shared test data)";
  auto a = rarlhf::load_safetensors(data + "fake-gpt2-hf/model.safetensors");
  ASSERT_TRUE(a.count("transformer.wte.weight"));
  EXPECT_EQ(a.at("transformer.wte.weight").sizes(), (std::vector<int64_t>{50257, 2}));
  EXPECT_EQ(a.at("transformer.h.0.attn.c_attn.weight").sizes(), (std::vector<int64_t>{2, 6}));
  EXPECT_EQ(a.at("transformer.h.0.mlp.c_proj.weight").sizes(), (std::vector<int64_t>{8, 2}));
  EXPECT_EQ(a.at("transformer.wte.weight").scalar_type(), at::kFloat);
  EXPECT_TRUE(torch::isfinite(a.at("transformer.wte.weight")).all().item<bool>());
  auto b = rarlhf::load_safetensors(data + "tiny-gpt2-vocab21/model.safetensors");
  ASSERT_TRUE(b.count("wte.weight"));
  EXPECT_EQ(b.at("wte.weight").sizes(), (std::vector<int64_t>{21, 2}));
  EXPECT_EQ(b.at("wpe.weight").sizes(), (std::vector<int64_t>{1024, 2}));
}

TEST(Safetensors, RejectsCorruptFiles) {
  const std::string ok_data(16, '\0');
  const std::string two = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
  // Sanity: the well-formed version loads.
  EXPECT_EQ(rarlhf::load_safetensors(write_raw("good.st", two, ok_data)).size(), 2u);

  // Truncated: a good file cut short in the data region, in the header, and before the length.
  std::string good = rarlhf::read_file(write_raw("good2.st", two, ok_data));
  rarlhf::write_file_atomic(temp_dir() + "/trunc_data.st", good.substr(0, good.size() - 3));
  expect_io_error(temp_dir() + "/trunc_data.st", "outside the data region");
  rarlhf::write_file_atomic(temp_dir() + "/trunc_header.st", good.substr(0, 20));
  expect_io_error(temp_dir() + "/trunc_header.st", "header length");
  rarlhf::write_file_atomic(temp_dir() + "/trunc_len.st", good.substr(0, 5));
  expect_io_error(temp_dir() + "/trunc_len.st", "shorter than");
  expect_io_error(write_raw("huge_len.st", two, ok_data, int64_t{1} << 62), "header length");

  expect_io_error(write_raw("badjson.st", R"({"a":{"dtype":"F32",)", ok_data), "not valid JSON");
  expect_io_error(write_raw("notobj.st", "[1,2]", ""), "not a JSON object");
  expect_io_error(write_raw("range.st", R"({"a":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}})", ok_data),
                  "outside the data region");
  expect_io_error(write_raw("shape.st", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]},)"
                                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                            ok_data),
                  "tensor 'a'");
  expect_io_error(write_raw("overlap.st", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                            ok_data),
                  "overlap");
  expect_io_error(write_raw("gap.st", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                            ok_data),
                  "gap");
  expect_io_error(write_raw("trailing.st", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", ok_data),
                  "cover 8 of 16");
  expect_io_error(write_raw("dup.st", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                            ok_data),
                  "appears twice");
  expect_io_error(write_raw("dtype.st", R"({"a":{"dtype":"F8_E4M3","shape":[16],"data_offsets":[0,16]}})", ok_data),
                  "unsupported dtype");
  expect_io_error(write_raw("negdim.st", R"({"a":{"dtype":"U8","shape":[-16],"data_offsets":[0,16]}})", ok_data),
                  "shape");
  expect_io_error(write_raw("offs.st", R"({"a":{"dtype":"U8","shape":[16],"data_offsets":[16,0]}})", ok_data),
                  "data_offsets");
  expect_io_error(write_raw("meta.st", R"({"__metadata__":{"format":1}})", ""), "__metadata__");
  expect_io_error(temp_dir() + "/does_not_exist.st", "cannot open");
}

TEST(Safetensors, UnalignedOffsetsAreCopied) {
  // A U8 followed by an F32 at byte offset 1: legal, but not aligned for a zero-copy float view.
  std::string data(5, '\0');
  data[0] = 9;
  float v = 2.5f;
  std::memcpy(&data[1], &v, 4);
  auto m = rarlhf::load_safetensors(write_raw(
      "unaligned.st",
      R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}})",
      data));
  EXPECT_EQ(m.at("a").item<uint8_t>(), 9);
  EXPECT_EQ(m.at("b").item<float>(), 2.5f);
}

TEST(Safetensors, SaveRejectsDuplicateNames) {
  EXPECT_THROW(rarlhf::save_safetensors(temp_dir() + "/d.st", {{"x", torch::ones({1})}, {"x", torch::ones({1})}}),
               IoError);
  EXPECT_FALSE(rarlhf::file_exists(temp_dir() + "/d.st"));
}

// load_hf_weights: one file, or the shards an index names (merged), and the errors a user meets.
std::string hf_weights_error(const std::string& dir) {
  try {
    rarlhf::load_hf_weights(dir, nullptr, "BIN-HINT", "MISSING-HINT");
  } catch (const IoError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(HfWeights, SingleFileOrIndexedShards) {
  const std::string dir = temp_dir() + "/hf_sharded";
  fs::remove_all(dir);
  fs::create_directories(dir);
  rarlhf::save_safetensors(dir + "/part-1.safetensors", {{"h.0.w", torch::arange(6.0).view({2, 3})}});
  rarlhf::save_safetensors(dir + "/part-2.safetensors", {{"h.1.w", torch::ones({4})}, {"wte", torch::zeros({2})}});
  const nlohmann::json index = {{"metadata", {{"total_size", 56}}},
                                {"weight_map", {{"h.0.w", "part-1.safetensors"}, {"h.1.w", "part-2.safetensors"},
                                                {"wte", "part-2.safetensors"}}}};
  rarlhf::write_file_atomic(dir + "/model.safetensors.index.json", index.dump());
  std::string source;
  auto w = rarlhf::load_hf_weights(dir, &source, "", "");
  EXPECT_EQ(source, dir + "/model.safetensors.index.json");
  ASSERT_EQ(w.size(), 3u);
  EXPECT_TRUE(torch::equal(w.at("h.0.w"), torch::arange(6.0).view({2, 3})));
  EXPECT_TRUE(torch::equal(w.at("h.1.w"), torch::ones({4})));

  // A single model.safetensors takes precedence, as in transformers.
  rarlhf::save_safetensors(dir + "/model.safetensors", {{"only", torch::ones({1})}});
  w = rarlhf::load_hf_weights(dir, &source, "", "");
  EXPECT_EQ(source, dir + "/model.safetensors");
  EXPECT_EQ(w.size(), 1u);
}

TEST(HfWeights, BadIndexesAndMissingWeightsAreErrorsNamingTheFile) {
  const std::string dir = temp_dir() + "/hf_bad";
  const std::string index = dir + "/model.safetensors.index.json";
  fs::remove_all(dir);
  fs::create_directories(dir);
  EXPECT_EQ(hf_weights_error(dir), dir + ": no model.safetensors; MISSING-HINT");
  rarlhf::write_file_atomic(dir + "/pytorch_model.bin", "not a pickle");
  EXPECT_EQ(hf_weights_error(dir), dir + ": has only pytorch_model.bin (a pickle), which rarlhf does not read; BIN-HINT");

  rarlhf::write_file_atomic(index, "{\"weight_map\": ");
  EXPECT_NE(hf_weights_error(dir).find(index + ": not valid JSON"), std::string::npos) << hf_weights_error(dir);
  rarlhf::write_file_atomic(index, R"({"metadata": {}})");
  EXPECT_EQ(hf_weights_error(dir), index + ": missing or empty weight_map");
  rarlhf::write_file_atomic(index, R"({"weight_map": {"a": "../elsewhere.safetensors"}})");
  EXPECT_EQ(hf_weights_error(dir), index + ": weight_map['a'] must name a shard file in " + dir);
  rarlhf::write_file_atomic(index, R"({"weight_map": {"a": "gone.safetensors"}})");
  EXPECT_NE(hf_weights_error(dir).find(dir + "/gone.safetensors"), std::string::npos) << hf_weights_error(dir);

  rarlhf::save_safetensors(dir + "/s1.safetensors", {{"a", torch::ones({1})}});
  rarlhf::save_safetensors(dir + "/s2.safetensors", {{"a", torch::zeros({1})}});
  rarlhf::write_file_atomic(index, R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})");
  EXPECT_EQ(hf_weights_error(dir), dir + "/s2.safetensors: tensor 'a' is also in another shard");
}

}  // namespace
