// Config system: layering, unknown keys with did-you-mean, type errors, validation, and
// every file in configs/ loading and validating.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/strings.h"
#include "rarlhf/config/config.h"

using namespace rarlhf;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {  // ConfigError or IoError
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Config, DefaultsFollowThePaper) {
  Config c;
  EXPECT_DOUBLE_EQ(c.ppo.learning_rate, 1.41e-5);
  EXPECT_EQ(c.ppo.batch_size, 128);
  EXPECT_DOUBLE_EQ(c.ppo.lam, 0.95);
  EXPECT_DOUBLE_EQ(c.risk.alpha, 0.4);
  EXPECT_EQ(c.risk.n, 30);
  EXPECT_NO_THROW(validate(c));
}

TEST(Config, SetOverridesWithJsonValues) {
  Config c = load_config("", {"ppo.clip_range=0.1", "risk.enabled=true", "run.name=seed7",
                              "eval.cvar_alphas=[0.1,0.5]"});
  EXPECT_DOUBLE_EQ(c.ppo.clip_range, 0.1);
  EXPECT_TRUE(c.risk.enabled);
  EXPECT_EQ(c.run.name, "seed7");
  ASSERT_EQ(c.eval.cvar_alphas.size(), 2u);
  EXPECT_DOUBLE_EQ(c.eval.cvar_alphas[1], 0.5);
}

TEST(Config, UnknownKeyNamesDottedPathAndSuggests) {
  std::string e = error_of([] { load_config("", {"ppo.clip_rnage=0.1"}); });
  EXPECT_NE(e.find("ppo.clip_rnage"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'ppo.clip_range'"), std::string::npos) << e;
  e = error_of([] { load_config("", {"rsik.alpha=0.1"}); });
  EXPECT_NE(e.find("did you mean 'risk.alpha'"), std::string::npos) << e;
  // A key in the wrong section is found across sections.
  e = error_of([] { load_config("", {"run.alpha=0.1"}); });
  EXPECT_NE(e.find("run.alpha"), std::string::npos) << e;
}

TEST(Config, WrongTypeNamesPathAndExpectedType) {
  std::string e = error_of([] { load_config("", {"ppo.batch_size=\"big\""}); });
  EXPECT_NE(e.find("ppo.batch_size"), std::string::npos) << e;
  EXPECT_NE(e.find("expected an integer"), std::string::npos) << e;
  e = error_of([] { load_config("", {"risk.enabled=1"}); });
  EXPECT_NE(e.find("expected a boolean"), std::string::npos) << e;
  e = error_of([] { load_config("", {"ppo.batch_size=1.5"}); });
  EXPECT_NE(e.find("expected an integer"), std::string::npos) << e;
}

TEST(Config, ValidateCrossFieldRules) {
  EXPECT_NE(error_of([] { load_config("", {"risk.alpha=0"}); }).find("risk.alpha"), std::string::npos);
  EXPECT_NE(error_of([] { load_config("", {"risk.alpha=1.5"}); }).find("risk.alpha"), std::string::npos);
  EXPECT_NO_THROW(load_config("", {"risk.alpha=1"}));
  EXPECT_NE(error_of([] { load_config("", {"data.train_resample_share=0.3"}); }).find(
                "data.train_resample_share: is set but data.resample_label is empty"),
            std::string::npos);
  EXPECT_NE(error_of([] { load_config("", {"data.resample_label=\"toxic\"", "data.test_resample_share=1"}); })
                .find("data.test_resample_share: must be in [0, 1)"),
            std::string::npos);
  EXPECT_NO_THROW(load_config("", {"data.resample_label=\"toxic\"", "data.test_resample_share=0.5"}));
  std::string e = error_of([] { load_config("", {"ppo.batch_size=10", "ppo.mini_batch_size=4"}); });
  EXPECT_NE(e.find("ppo.mini_batch_size"), std::string::npos) << e;
  e = error_of([] { load_config("", {"generate.min_new_tokens=60"}); });
  EXPECT_NE(e.find("generate.min_new_tokens"), std::string::npos) << e;
  e = error_of([] { load_config("", {"model.dtype=\"float64\""}); });
  EXPECT_NE(e.find("model.dtype"), std::string::npos) << e;
}

TEST(Config, FileLayeringWithExtendsAndBadJson) {
  auto dir = std::filesystem::temp_directory_path() / "rarlhf_config_test";
  std::filesystem::create_directories(dir);
  write_file_atomic((dir / "base.json").string(), R"({"ppo": {"batch_size": 64, "mini_batch_size": 32}})");
  write_file_atomic((dir / "child.json").string(),
                    R"({"extends": "base.json", "ppo": {"mini_batch_size": 16}, "risk": {"enabled": true}})");
  Config c = load_config((dir / "child.json").string(), {"ppo.batch_size=32"});
  EXPECT_EQ(c.ppo.batch_size, 32);       // --set wins
  EXPECT_EQ(c.ppo.mini_batch_size, 16);  // child wins over base
  EXPECT_TRUE(c.risk.enabled);
  write_file_atomic((dir / "bad.json").string(), "{\"ppo\": {");
  std::string e = error_of([&] { load_config((dir / "bad.json").string(), {}); });
  EXPECT_NE(e.find("bad.json"), std::string::npos) << e;
  EXPECT_NE(e.find("not valid JSON"), std::string::npos) << e;
  // A directory given as --config is named as such (an ifstream would read it as an empty file).
  e = error_of([&] { load_config(dir.string(), {}); });
  EXPECT_NE(e.find(dir.string() + ": is a directory"), std::string::npos) << e;
  write_file_atomic((dir / "cyc.json").string(), R"({"extends": "cyc.json"})");
  EXPECT_NE(error_of([&] { load_config((dir / "cyc.json").string(), {}); }).find("cycle"),
            std::string::npos);
}

TEST(Config, ValidateNamesWhereTheValueCameFrom) {
  auto dir = std::filesystem::temp_directory_path() / "rarlhf_config_origin_test";
  std::filesystem::create_directories(dir);
  const std::string base = (dir / "base.json").string(), child = (dir / "child.json").string();
  write_file_atomic(base, R"({"ppo": {"mini_batch_size": 48}, "data": {"format": "jsnol"}})");
  write_file_atomic(child, R"({"extends": "base.json", "ppo": {"batch_size": 64}})");
  // The value of the key a rule names came from base.json, not from the file given.
  std::string e = error_of([&] { load_config(child, {"data.format=\"jsonl\""}); });
  EXPECT_EQ(e.rfind(base + ": ppo.mini_batch_size: 48 does not divide ppo.batch_size 64", 0), 0u) << e;
  e = error_of([&] { load_config(child, {"ppo.mini_batch_size=32"}); });
  EXPECT_EQ(e, base + ": data.format: 'jsnol' is not one of jsonl, csv, lines, imdb_dir, jigsaw_csv, rtp_jsonl, "
                      "uci_json; did you mean 'jsonl'?");
  e = error_of([] { load_config("", {"ppo.kl_penalty=\"k2\""}); });
  EXPECT_EQ(e.rfind("--set: ppo.kl_penalty: 'k2' is not one of k1, k3", 0), 0u) << e;
  // A default has no origin: the key alone.
  e = error_of([] { load_config("", {"generate.max_new_tokens=8"}); });
  EXPECT_EQ(e.rfind("generate.min_new_tokens: must be in [0, generate.max_new_tokens]", 0), 0u) << e;
  std::filesystem::remove_all(dir);
}

TEST(Config, ReferenceListsEachKeysChoices) {
  const std::string md = config_reference_markdown();
  EXPECT_NE(md.find("| k1 | k3: per-token KL estimate"), std::string::npos) << md;
  EXPECT_NE(md.find("| jsonl | csv | lines | imdb_dir | jigsaw_csv | rtp_jsonl | uci_json: "), std::string::npos);
  EXPECT_NE(md.find("| prompt+response | response: "), std::string::npos);
}

TEST(Config, JsonRoundTrip) {
  Config c = load_config("", {"ppo.vf_coef=0.3", "model.path=\"/m\""});
  nlohmann::json j = to_json(c);
  Config d;
  apply_json(d, j, "roundtrip");
  EXPECT_EQ(to_json(d), j);
}

TEST(Config, EveryShippedConfigLoadsAndValidates) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(RARLHF_SOURCE_DIR) / "configs";
  int n = 0;
  for (auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().extension() != ".json") continue;
    // configs/models/ holds Hugging Face model architectures (config.json), not run configs.
    if (e.path().string().find("/configs/models/") != std::string::npos) continue;
    SCOPED_TRACE(e.path().string());
    EXPECT_NO_THROW(load_config(e.path().string(), {}));
    ++n;
  }
  EXPECT_GT(n, 0);
}

TEST(Config, ReferenceListsEveryKey) {
  std::string md = config_reference_markdown();
  EXPECT_NE(md.find("`risk.alpha`"), std::string::npos);
  EXPECT_NE(md.find("`ppo.clip_range`"), std::string::npos);
}

TEST(Config, ReadmeReferenceIsCurrent) {
  // README.md's configuration reference must equal `rarlhf config --doc`
  // (regenerate it with scripts/update_readme_config.sh).
  const std::string readme = read_file(std::string(RARLHF_SOURCE_DIR) + "/README.md");
  const std::string begin = "<!-- config-reference:begin -->\n", end = "<!-- config-reference:end -->";
  auto a = readme.find(begin), b = readme.find(end);
  ASSERT_NE(a, std::string::npos);
  ASSERT_NE(b, std::string::npos);
  EXPECT_EQ(readme.substr(a + begin.size(), b - a - begin.size()), config_reference_markdown())
      << "run scripts/update_readme_config.sh";
}

TEST(Config, HostileInputIsBoundedAndNamed) {
  auto dir = std::filesystem::temp_directory_path() / "rarlhf_config_hostile_test";
  std::filesystem::create_directories(dir);
  const std::string deep = (dir / "deep.json").string();
  // 100,000 nested arrays as a value: used to overflow the stack (SIGSEGV) when the type error
  // printed the value.
  write_file_atomic(deep, "{\"ppo\": {\"learning_rate\": " + std::string(100000, '[') + "1" + std::string(100000, ']') + "}}");
  std::string e = error_of([&] { load_config(deep, {}); });
  EXPECT_EQ(e, deep + ": nested deeper than 32 levels; a config is SECTION.FIELD: value");
  e = error_of([] { load_config("", {"ppo.learning_rate=" + std::string(30000, '[') + "1" + std::string(30000, ']')}); });
  EXPECT_NE(e.find("--set ppo.learning_rate: nested deeper than 32 levels"), std::string::npos) << e.substr(0, 200);
  EXPECT_LT(e.size(), 200u);
  // A wrong-typed value is shown cut short, not echoed whole.
  std::string many = "[1";
  for (int i = 0; i < 2000; ++i) many += ",1";
  e = error_of([&] { load_config("", {"ppo.learning_rate=" + many + "]"}); });
  EXPECT_LT(e.size(), 200u) << e.substr(0, 300);
  EXPECT_NE(e.find("..."), std::string::npos) << e;
  // Numbers outside double's range name the file or the --set.
  const std::string big = (dir / "big.json").string();
  write_file_atomic(big, R"({"ppo": {"learning_rate": 1e400}})");
  EXPECT_EQ(error_of([&] { load_config(big, {}); }), big + ": number 1e400 is out of range; write a finite number");
  EXPECT_EQ(error_of([] { load_config("", {"ppo.learning_rate=1e400"}); }),
            "--set ppo.learning_rate: number 1e400 is out of range; write a finite number");
  // A key twice in one object: JSON parsers keep the last without a word.
  const std::string dup = (dir / "dup.json").string();
  write_file_atomic(dup, R"({"ppo": {"learning_rate": 0.1, "batch_size": 8, "learning_rate": 0.2}})");
  EXPECT_EQ(error_of([&] { load_config(dup, {}); }), dup + ": key \"learning_rate\" appears twice in one object; keep one");
  // The same name in two different objects is fine.
  write_file_atomic(dup, R"({"ppo": {"learning_rate": 0.1}, "sft": {"learning_rate": 0.1}})");
  EXPECT_EQ(error_of([&] { load_config(dup, {}); }), "");
  std::filesystem::remove_all(dir);
}

// Issue #19, item 8 and what the config fuzzer (fuzz/fuzz_config.cpp) found: an integer above
// int64's range wrapped negative and was reported as "must be > 0"; "cudaXYZ" passed validation;
// keys with control characters or invalid UTF-8 made multi-line or JSON-exception messages.
TEST(Config, OutOfRangeIntegersDevicesAndOddKeysAreNamedOnOneLine) {
  EXPECT_EQ(error_of([] { load_config("", {"ppo.batch_size=10000000000000000000"}); }),
            "--set: ppo.batch_size: 10000000000000000000 is out of range; an integer here is at most "
            "9223372036854775807");
  EXPECT_EQ(error_of([] { load_config("", {"run.save_every=9223372036854775807"}); }), "");
  for (const char* bad : {"cudaXYZ", "cuda:", "cuda:x", "cuda:-1", "cuda:12345", "CPU", "cuda0"}) {
    EXPECT_EQ(error_of([&] { load_config("", {std::string("run.device=") + bad}); }),
              std::string("--set: run.device: '") + bad + "' is not auto, cpu, cuda or cuda:N")
        << bad;
  }
  for (const char* good : {"auto", "cpu", "cuda", "cuda:0", "cuda:15"}) {
    EXPECT_EQ(error_of([&] { load_config("", {std::string("run.device=") + good}); }), "") << good;
  }
  // A key holding a CR and bytes that are not UTF-8 (the fuzzer's input, shortened).
  const std::string e = error_of([] { load_config("", {"{\xff" "6\r\xff:risk.\xe1lpha=0.3"}); });
  EXPECT_EQ(e.rfind("--set: {\\xFF6\\r\\xFF:risk: unknown key", 0), 0u) << e;
  EXPECT_EQ(e.find_first_of("\r\n\xff"), std::string::npos) << e;
  EXPECT_EQ(error_of([] { load_config("", {"ppo.batch_siz\ne=1"}); }),
            "--set: ppo.batch_siz\\ne: unknown key; did you mean 'ppo.batch_size'?");
  // A 5,000-character key: no suggestion, bounded line, and no length x length search.
  const std::string k = error_of([] { load_config("", {"ppo." + std::string(5000, 'x') + "=1"}); });
  EXPECT_LT(k.size(), 200u);
  EXPECT_NE(k.find("unknown key; run `rarlhf config --doc`"), std::string::npos) << k;
}

// excerpt(): how error lines show a user's bytes.
TEST(Strings, ExcerptEscapesAndCutsOnBoundaries) {
  EXPECT_EQ(excerpt("plain text"), "plain text");
  EXPECT_EQ(excerpt("a\nb\r\tc"), "a\\nb\\r\\tc");
  EXPECT_EQ(excerpt("\x01\x7f"), "\\x01\\x7F");
  EXPECT_EQ(excerpt("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(excerpt("\xffx"), "\\xFFx");                      // not a UTF-8 lead byte
  EXPECT_EQ(excerpt("ab\xc3"), "ab\\xC3");                    // truncated sequence
  EXPECT_EQ(excerpt("\xed\xa0\x80"), "\\xED\\xA0\\x80");      // surrogate U+D800
  EXPECT_EQ(excerpt("\xc0\xaf"), "\\xC0\\xAF");              // overlong '/'
  EXPECT_EQ(excerpt("\xf4\x90\x80\x80"), "\\xF4\\x90\\x80\\x80");  // above U+10FFFF
  EXPECT_EQ(excerpt(std::string(100, 'a'), 10), "aaaaaaaaaa...");
  EXPECT_EQ(excerpt("abcdefghi\n", 10), "abcdefghi...");        // not inside an escape
  EXPECT_EQ(excerpt("abcdefghi\xc3\xa9", 10), "abcdefghi...");  // not inside a character
  EXPECT_EQ(excerpt("abcdefgh\xc3\xa9", 10), "abcdefgh\xc3\xa9");
  EXPECT_EQ(excerpt(""), "");
}

TEST(Strings, DidYouMeanSkipsCandidatesTooFarInLength) {
  EXPECT_EQ(did_you_mean("rsik.alpha", {"ppo.batch_size", "risk.alpha"}), "risk.alpha");
  EXPECT_EQ(did_you_mean("ab", {"abc", "xy"}), "abc");
  EXPECT_EQ(did_you_mean(std::string(5000, 'x'), {"risk.alpha"}), "");
  EXPECT_EQ(did_you_mean("x", {}), "");
}
