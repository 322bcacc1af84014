// read_texts for every format on small crafted files (written into a temp dir) including
// malformed rows, plus the shared real files whose counts their PROVENANCE.md documents.
#include <gtest/gtest.h>

#include <cmath>

#include "rarlhf/common/error.h"
#include "rarlhf/config/config.h"
#include "rarlhf/data/dataset.h"
#include "support/temp_dir.h"

namespace rarlhf {
namespace {

using testing::TempDir;
using testing::shared_data;

DataConfig cfg_for(const std::string& format) {
  DataConfig c;
  c.format = format;
  return c;
}

TEST(Dataset, CsvQuotedNewlinesLabelsAndMalformedRows) {
  TempDir d;
  std::string path = d.write("r.csv",
                             "id,text,label\r\n"
                             "1,\"A film, with commas\",pos\r\n"
                             "2,\"Line one\r\nline \"\"two\"\"\",neg\r\n"
                             "3,too,many,fields\r\n"
                             "4,\"bad\"quote,pos\r\n"
                             "5,last one,neg\r\n");
  ReadReport rep;
  auto ex = read_texts(cfg_for("csv"), path, &rep);
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0].text, "A film, with commas");
  EXPECT_EQ(ex[0].label, "pos");
  EXPECT_EQ(ex[0].where, path + ":2");
  EXPECT_EQ(ex[1].text, "Line one\r\nline \"two\"");
  EXPECT_EQ(ex[1].label, "neg");
  EXPECT_EQ(ex[2].text, "last one");
  EXPECT_EQ(ex[2].where, path + ":7");  // record 2 spans lines 3-4
  EXPECT_TRUE(std::isnan(ex[0].given_score));
  EXPECT_EQ(rep.rows, 5);
  EXPECT_EQ(rep.kept, 3);
  EXPECT_EQ(rep.malformed, 2);
  ASSERT_EQ(rep.problems.size(), 2u);
  EXPECT_EQ(rep.problems[0].rfind(path + ":5: 4 fields, header has 3", 0), 0u) << rep.problems[0];
  EXPECT_EQ(rep.problems[1].rfind(path + ":6: ", 0), 0u) << rep.problems[1];
}

TEST(Dataset, OnErrorFailThrowsWithFileAndLine) {
  TempDir d;
  std::string path = d.write("r.csv", "text,label\nok,pos\n\"broken\"x,neg\n");
  DataConfig c = cfg_for("csv");
  c.on_error = "fail";
  try {
    read_texts(c, path);
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ":3: ", 0), 0u) << e.what();
  }
}

TEST(Dataset, CsvMissingColumnIsConfigErrorWithSuggestion) {
  TempDir d;
  std::string path = d.write("r.csv", "review,label\nx,pos\n");
  try {
    read_texts(cfg_for("csv"), path);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("no column 'text'"), std::string::npos) << m;
    EXPECT_NE(m.find("data.text_field"), std::string::npos) << m;
  }
  DataConfig c = cfg_for("csv");
  c.text_field = "review";
  c.label_field = "lable";
  EXPECT_THROW(
      {
        try {
          read_texts(c, path);
        } catch (const ConfigError& e) {
          EXPECT_NE(std::string(e.what()).find("did you mean 'label'"), std::string::npos) << e.what();
          throw;
        }
      },
      ConfigError);
}

// Issue #19: one stray quote used to swallow the next 20 rows into "1 malformed row" with no hint;
// the message now says where the record ends and why. Fields echoed in messages stay one bounded
// line (a 1 MB field used to make a 1 MB error line, a newline in it a two-line error).
TEST(Dataset, CsvStrayQuoteAndHugeFieldsGiveOneBoundedLine) {
  TempDir d;
  std::string rows = "text,label\nfine,pos\n\"stray quote,neg\n";      // lines 1-3
  for (int i = 0; i < 20; ++i) rows += "row " + std::to_string(i) + ",pos\n";  // lines 4-23
  rows += "closed\",neg,pos\nafter,pos\n";  // the quote opened on line 3 closes on line 24
  std::string path = d.write("stray.csv", rows);
  ReadReport rep;
  auto ex = read_texts(cfg_for("csv"), path, &rep);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[1].text, "after");
  EXPECT_EQ(ex[1].where, path + ":25");
  ASSERT_EQ(rep.problems.size(), 1u);
  EXPECT_EQ(rep.problems[0], path + ":3: 3 fields, header has 2 (the record runs to line 24: a stray quote opening "
                                    "a field joins the 21 line(s) after it into one record)");
  // The same stray quote closed by a quote inside later text: malformed for that reason, same hint.
  path = d.write("stray2.csv", "text,label\n\"stray,neg\nsays \"hi\" there,pos\nafter,pos\n");
  ReadReport rep1;
  read_texts(cfg_for("csv"), path, &rep1);
  ASSERT_EQ(rep1.problems.size(), 1u);
  EXPECT_EQ(rep1.problems[0], path + ":2: unexpected character 'h' after a closing quote in field 1 (a quote inside a "
                                     "quoted field must be doubled) (the record runs to line 3: a stray quote opening "
                                     "a field joins the 1 line(s) after it into one record)");

  DataConfig c = cfg_for("csv");
  c.label_field = "";
  c.score_field = "score";
  path = d.write("huge.csv", "text,score\nok,\"" + std::string(1 << 20, '9') + "x\"\nnl,\"1\n2\"\ngood,1\n");
  ReadReport rep2;
  read_texts(c, path, &rep2);
  ASSERT_EQ(rep2.problems.size(), 2u);
  EXPECT_EQ(rep2.problems[0], path + ":2: column 'score' is not a number: '" + std::string(60, '9') + "...'");
  EXPECT_EQ(rep2.problems[1], path + ":3: column 'score' is not a number: '1\\n2'");
  // With nothing usable the error line repeats the first problem: still bounded, still one line.
  path = d.write("huge3.csv", "text,score\nok,\"" + std::string(1 << 20, '9') + "\n\"\n");
  try {
    read_texts(c, path);
    FAIL() << "no usable text expected";
  } catch (const IoError& e) {
    const std::string m = e.what();
    EXPECT_LT(m.size(), 400u) << m.size();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

TEST(Dataset, CsvScoreFieldAndNoLabel) {
  TempDir d;
  std::string path = d.write("s.csv", ",score,review\n0,-3.5,bad film\n1,x,unparseable\n2,2.25,good film\n");
  DataConfig c = cfg_for("csv");
  c.text_field = "review";
  c.label_field = "";
  c.score_field = "score";
  ReadReport rep;
  auto ex = read_texts(c, path, &rep);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_DOUBLE_EQ(ex[0].given_score, -3.5);
  EXPECT_DOUBLE_EQ(ex[1].given_score, 2.25);
  EXPECT_EQ(ex[1].label, "");
  EXPECT_EQ(rep.malformed, 1);
  EXPECT_NE(rep.problems[0].find(":3: column 'score' is not a number"), std::string::npos) << rep.problems[0];
}

TEST(Dataset, JsonlLabelKindsDottedFieldsAndMalformed) {
  TempDir d;
  std::string path = d.write("r.jsonl",
                             "{\"text\": \"string label\", \"label\": \"positive\"}\n"
                             "{\"text\": \"int label\", \"label\": 1}\n"
                             "\n"
                             "{\"text\": \"bool label\", \"label\": false}\n"
                             "{\"text\": \"float label\", \"label\": 0.0}\n"
                             "{\"text\": \"no label\"}\n"
                             "{\"text\": 5, \"label\": 1}\n"
                             "{not json\n"
                             "[1, 2]\n"
                             "{\"text\": \"null label\", \"label\": null}\n");
  ReadReport rep;
  auto ex = read_texts(cfg_for("jsonl"), path, &rep);
  ASSERT_EQ(ex.size(), 4u);
  EXPECT_EQ(ex[0].label, "positive");
  EXPECT_EQ(ex[1].label, "1");
  EXPECT_EQ(ex[2].label, "false");
  EXPECT_EQ(ex[2].where, path + ":4");
  EXPECT_EQ(ex[3].label, "0");
  EXPECT_EQ(rep.rows, 9);  // the blank line is not a row
  EXPECT_EQ(rep.malformed, 5);
  ASSERT_EQ(rep.problems.size(), 5u);
  EXPECT_EQ(rep.problems[0], path + ":6: no field 'label' (data.label_field; \"\" = no labels)");
  EXPECT_EQ(rep.problems[1], path + ":7: field 'text' is not a string");
  EXPECT_EQ(rep.problems[2], path + ":8: not valid JSON");
  EXPECT_EQ(rep.problems[3], path + ":9: not a JSON object");
  EXPECT_NE(rep.problems[4].find(":10: field 'label': label is null"), std::string::npos);

  std::string nested = d.write("n.jsonl", "{\"prompt\": {\"text\": \"deep\", \"s\": -1.5}, \"y\": true}\n");
  DataConfig c = cfg_for("jsonl");
  c.text_field = "prompt.text";
  c.label_field = "y";
  c.score_field = "prompt.s";
  auto n = read_texts(c, nested);
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].text, "deep");
  EXPECT_EQ(n[0].label, "true");
  EXPECT_DOUBLE_EQ(n[0].given_score, -1.5);
}

TEST(Dataset, LinesSkipsBlankAndStripsCr) {
  TempDir d;
  std::string path = d.write("t.txt", "first line\r\n\r\n   \nsecond\nthird");
  ReadReport rep;
  auto ex = read_texts(cfg_for("lines"), path, &rep);
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0].text, "first line");
  EXPECT_EQ(ex[1].text, "second");
  EXPECT_EQ(ex[1].where, path + ":4");
  EXPECT_EQ(ex[2].text, "third");
  EXPECT_EQ(rep.rows, 3);
}

TEST(Dataset, MinCharsCountsCodePointsAndMaxExamplesCaps) {
  TempDir d;
  // "héllo" is 5 code points but 6 bytes: kept with min_chars 4, dropped with min_chars 5.
  std::string path = d.write("t.txt", "h\xC3\xA9llo\nabcd\nabcdef\nxyzxyz\nlast12\n");
  DataConfig c = cfg_for("lines");
  c.min_chars = 4;
  ReadReport rep;
  auto ex = read_texts(c, path, &rep);
  ASSERT_EQ(ex.size(), 4u);
  EXPECT_EQ(ex[0].text, "h\xC3\xA9llo");
  EXPECT_EQ(rep.filtered, 1);  // "abcd" has length 4, not > 4
  c.min_chars = 5;
  ex = read_texts(c, path, &rep);
  EXPECT_EQ(ex.size(), 3u);
  EXPECT_EQ(rep.filtered, 2);
  c.max_examples = 2;
  ex = read_texts(c, path, &rep);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[1].text, "xyzxyz");
  EXPECT_EQ(rep.rows, 4);  // stops reading once the cap is reached
  EXPECT_EQ(utf8_length("h\xC3\xA9llo \xE2\x82\xAC\xF0\x9F\x98\x80"), 8);
}

TEST(Dataset, ImdbDirCleansBreaksInterleavesAndFiltersOnRawLength) {
  TempDir d;
  d.write("aclImdb/train/neg/10_2.txt", "Awful.<br /><br />Truly awful.");
  d.write("aclImdb/train/neg/2_1.txt", "Bad<br/>film");
  d.write("aclImdb/train/neg/3_4.txt", "");
  d.write("aclImdb/train/pos/7_9.txt", "Loved it.<br />Really.");
  d.write("aclImdb/train/pos/notes.md", "not a review");
  d.write("aclImdb/train/unsup/1_0.txt", "unlabelled");
  DataConfig c = cfg_for("imdb_dir");
  ReadReport rep;
  // Default: the text exactly as HF's `imdb` holds it (the paper tokenizes and scores the tags).
  auto raw = read_texts(c, d.path("aclImdb/train"), &rep);
  ASSERT_EQ(raw.size(), 3u);
  EXPECT_EQ(raw[0].text, "Bad<br/>film");
  EXPECT_EQ(raw[1].text, "Loved it.<br />Really.");
  EXPECT_EQ(raw[2].text, "Awful.<br /><br />Truly awful.");
  c.imdb_line_breaks = "newline";
  auto ex = read_texts(c, d.path("aclImdb/train"), &rep);
  ASSERT_EQ(ex.size(), 3u);
  // neg by id (2, 3, 10) interleaved with pos (7): neg2, pos7, neg3 (empty, filtered), neg10
  EXPECT_EQ(ex[0].text, "Bad\nfilm");
  EXPECT_EQ(ex[0].label, "neg");
  EXPECT_EQ(ex[1].text, "Loved it.\nReally.");
  EXPECT_EQ(ex[1].label, "pos");
  EXPECT_EQ(ex[2].text, "Awful.\n\nTruly awful.");
  EXPECT_EQ(rep.rows, 4);
  EXPECT_EQ(rep.filtered, 1);
  // min_chars applies to the raw text: "Bad<br/>film" is 12 raw chars (8 cleaned).
  c.min_chars = 11;
  ex = read_texts(c, d.path("aclImdb/train"), &rep);
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0].text, "Bad\nfilm");
  c.min_chars = 12;
  ex = read_texts(c, d.path("aclImdb/train"), &rep);
  EXPECT_EQ(ex.size(), 2u);
  EXPECT_THROW(read_texts(c, d.path("aclImdb")), ConfigError);  // the root: say which split
  EXPECT_THROW(read_texts(c, d.path("nowhere")), IoError);
}

TEST(Dataset, JigsawTrainCsvLabelsAndReward) {
  TempDir d;
  std::string path = d.write("train.csv",
                             "id,comment_text,toxic,severe_toxic,reward\n"
                             "a1,\"You are \"\"great\"\"\nthanks\",0,0,5.5\n"
                             "a2,you idiot,1,0,-3.25\n"
                             "a3,odd label,2,0,0\n");
  ReadReport rep;
  auto ex = read_texts(cfg_for("jigsaw_csv"), path, &rep);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].text, "You are \"great\"\nthanks");
  EXPECT_EQ(ex[0].label, "non-toxic");
  EXPECT_DOUBLE_EQ(ex[0].given_score, 5.5);
  EXPECT_EQ(ex[1].label, "toxic");
  EXPECT_DOUBLE_EQ(ex[1].given_score, -3.25);
  EXPECT_EQ(rep.malformed, 1);
  EXPECT_NE(rep.problems[0].find(":5: toxic is '2'"), std::string::npos) << rep.problems[0];
}

TEST(Dataset, JigsawKaggleTestJoinsTestLabels) {
  TempDir d;
  std::string path = d.write("test.csv", "id,comment_text\nx1,first\nx2,second\nx3,third\nx4,fourth\n");
  DataConfig c = cfg_for("jigsaw_csv");
  EXPECT_THROW(read_texts(c, path), ConfigError);  // no labels beside it yet
  d.write("test_labels.csv", "id,toxic,severe_toxic\nx1,1,0\nx2,-1,-1\nx3,0,0\n");
  ReadReport rep;
  auto ex = read_texts(c, path, &rep);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].text, "first");
  EXPECT_EQ(ex[0].label, "toxic");
  EXPECT_EQ(ex[1].text, "third");
  EXPECT_EQ(ex[1].label, "non-toxic");
  EXPECT_EQ(rep.filtered, 1);   // x2: -1 = unscored
  EXPECT_EQ(rep.malformed, 1);  // x4: no label row
}

TEST(Dataset, RealToxicityPromptsJsonl) {
  TempDir d;
  std::string path = d.write(
      "prompts.jsonl",
      "{\"filename\":\"a\",\"challenging\":false,\"prompt\":{\"text\":\"Corruption involving\",\"toxicity\":0.29},"
      "\"continuation\":{\"text\":\" the contractors\",\"toxicity\":0.1}}\n"
      "{\"prompt\":{\"text\":\"You stupid\",\"toxicity\":0.5},\"continuation\":{\"text\":\" x\"}}\n"
      "{\"prompt\":{\"text\":\"unscored\",\"toxicity\":null},\"continuation\":{\"text\":\" y\"}}\n"
      "{\"prompt\":{\"toxicity\":0.9}}\n");
  ReadReport rep;
  auto ex = read_texts(cfg_for("rtp_jsonl"), path, &rep);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].text, "Corruption involving");
  EXPECT_EQ(ex[0].label, "non-toxic");
  EXPECT_EQ(ex[0].reference, " the contractors");
  EXPECT_EQ(ex[1].label, "toxic");  // >= 0.5
  EXPECT_EQ(rep.filtered, 1);
  EXPECT_EQ(rep.malformed, 1);
  EXPECT_EQ(rep.problems[0], path + ":4: no string prompt.text");
}

TEST(Dataset, UciJsonSharedFixture) {
  // PROVENANCE.md: 500 negative + 500 positive sentences plus a trailing empty entry.
  ReadReport rep;
  auto ex = read_texts(cfg_for("uci_json"), shared_data("uci-sentiment-sentences/imdb.json"), &rep);
  EXPECT_EQ(ex.size(), 1000u);
  EXPECT_EQ(rep.rows, 1001);
  EXPECT_EQ(rep.filtered, 1);
  EXPECT_EQ(rep.malformed, 0);
  EXPECT_EQ(filter_label(ex, "pos").size(), 500u);
  EXPECT_EQ(filter_label(ex, "neg").size(), 500u);
  EXPECT_EQ(ex[0].text, "A very, very, very slow-moving, aimless movie about a distressed, drifting young man.");
  EXPECT_EQ(ex[0].label, "neg");

  TempDir d;
  std::string bad = d.write("bad.json", "[{\"text\":\"ok\",\"class\":1},{\"text\":\"x\",\"class\":3}]");
  auto b = read_texts(cfg_for("uci_json"), bad, &rep);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(rep.problems[0], bad + ":item 2: 'class' must be 0 or 1");
  std::string notjson = d.write("nj.json", "{\"text\":");
  EXPECT_THROW(read_texts(cfg_for("uci_json"), notjson), IoError);
}

TEST(Dataset, JigsawSharedFileMatchesProvenance) {
  // PROVENANCE.md: 7,708 rows, 3,854 toxic / 3,854 non-toxic, mean reward non-toxic +5.75, toxic -2.95.
  ReadReport rep;
  auto ex = read_texts(cfg_for("jigsaw_csv"), shared_data("jigsaw-rarlhf/jigsaw_test.csv"), &rep);
  ASSERT_EQ(ex.size(), 7708u);
  EXPECT_EQ(rep.malformed, 0);
  double sum_tox = 0, sum_non = 0;
  int64_t n_tox = 0, n_non = 0;
  for (const auto& e : ex) {
    ASSERT_FALSE(std::isnan(e.given_score)) << e.where;
    if (e.label == "toxic") {
      sum_tox += e.given_score;
      ++n_tox;
    } else {
      sum_non += e.given_score;
      ++n_non;
    }
  }
  EXPECT_EQ(n_tox, 3854);
  EXPECT_EQ(n_non, 3854);
  EXPECT_NEAR(sum_non / n_non, 5.75, 0.005);
  EXPECT_NEAR(sum_tox / n_tox, -2.95, 0.005);
}

// The reference's Jigsaw prompt sets keep len(comment_text) > 64 (its test CSV: 7,708 rows, the
// shortest comment 65 characters): configs/jigsaw.json sets data.min_chars = 64, which keeps every
// row of that file and drops a 64-character comment while keeping a 65-character one.
TEST(Dataset, JigsawLengthFilterOfTheReference) {
  DataConfig c = cfg_for("jigsaw_csv");
  c.min_chars = 64;
  ReadReport rep;
  auto ex = read_texts(c, shared_data("jigsaw-rarlhf/jigsaw_test.csv"), &rep);
  EXPECT_EQ(ex.size(), 7708u);
  EXPECT_EQ(rep.filtered, 0);
  TempDir d;
  const std::string c64(64, 'a'), c65 = std::string(63, 'b') + "\xC3\xA9\xC3\xA9";  // 65 code points, 67 bytes
  const std::string path = d.write("train.csv", "id,comment_text,toxic\n1," + c64 + ",0\n2," + c65 + ",1\n3,short,0\n");
  ex = read_texts(c, path, &rep);
  ASSERT_EQ(ex.size(), 1u);
  EXPECT_EQ(ex[0].text, c65);
  EXPECT_EQ(rep.filtered, 2);
  // And configs/jigsaw.json asks for it (RealToxicityPrompts, which extends it, does not).
  Config j = load_config(std::string(RARLHF_SOURCE_DIR) + "/configs/jigsaw.json", {});
  EXPECT_EQ(j.data.min_chars, 64);
  EXPECT_EQ(load_config(std::string(RARLHF_SOURCE_DIR) + "/configs/rtp.json", {}).data.min_chars, 0);
}

TEST(Dataset, ImdbRarlhfCsvRowCounts) {
  // PROVENANCE.md row counts for the paper-scored IMDB files (columns ",score,review").
  DataConfig c = cfg_for("csv");
  c.text_field = "review";
  c.label_field = "";
  c.score_field = "score";
  ReadReport rep;
  auto ex = read_texts(c, shared_data("imdb-rarlhf/critical_neg_texts_200char.csv"), &rep);
  EXPECT_EQ(ex.size(), 1849u);
  EXPECT_EQ(rep.malformed, 0);
  for (const auto& e : ex) EXPECT_LT(e.given_score, -2.8) << e.where;  // "score < -2.8"
  ex = read_texts(c, shared_data("imdb-rarlhf/critical_pos_texts.csv"), &rep);
  EXPECT_EQ(ex.size(), 902u);
}

TEST(Dataset, NothingUsableIsAnErrorNotAnEmptyDataset) {
  TempDir d;
  std::string path = d.write("t.jsonl", "{\"txt\": \"typo in the field name\"}\n");
  try {
    read_texts(cfg_for("jsonl"), path);
    FAIL();
  } catch (const IoError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("no usable text (1 rows, 0 filtered, 1 malformed; first: " + path + ":1: no field 'text'"),
              std::string::npos)
        << m;
  }
  std::string empty = d.write("e.txt", "\n\n");
  EXPECT_THROW(read_texts(cfg_for("lines"), empty), IoError);
  EXPECT_THROW(read_texts(cfg_for("jsonl"), d.path()), IoError);  // a folder, not a file
}

TEST(Dataset, UnknownFormatSuggests) {
  DataConfig c = cfg_for("jsnol");
  try {
    read_texts(c, "x");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'jsonl'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace rarlhf
