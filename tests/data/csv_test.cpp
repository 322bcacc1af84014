// CsvReader against hand-written RFC 4180 records: quoting, embedded newlines, CRLF, line numbers,
// malformed records, and csv_escape round trips.
#include <gtest/gtest.h>

#include "rarlhf/data/csv.h"

namespace rarlhf {
namespace {

using Fields = std::vector<std::string>;

std::vector<Fields> read_all(const std::string& content, std::vector<int64_t>* lines = nullptr) {
  CsvReader r(content, "x.csv");
  std::vector<Fields> out;
  Fields f;
  while (r.next(f) == CsvReader::Status::kRecord) {
    out.push_back(f);
    if (lines) lines->push_back(r.line());
  }
  return out;
}

TEST(Csv, QuotedFieldsWithCommasNewlinesAndDoubledQuotes) {
  std::vector<int64_t> lines;
  auto rows = read_all(
      "a,b,c\n"
      "1,\"x, y\",\"she said \"\"hi\"\"\"\n"
      "2,\"two\nlines\",plain\n"
      "3,,\"\"\n",
      &lines);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0], (Fields{"a", "b", "c"}));
  EXPECT_EQ(rows[1], (Fields{"1", "x, y", "she said \"hi\""}));
  EXPECT_EQ(rows[2], (Fields{"2", "two\nlines", "plain"}));
  EXPECT_EQ(rows[3], (Fields{"3", "", ""}));
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 2, 3, 5}));  // record 3 spans lines 3-4
}

TEST(Csv, CrlfLineEndsAndBomAndBlankLines) {
  std::vector<int64_t> lines;
  auto rows = read_all("\xEF\xBB\xBFh1,h2\r\n\"q\",u\r\n\r\n\"multi\r\nline\",z\r\nlast,\"row\"", &lines);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0], (Fields{"h1", "h2"}));
  EXPECT_EQ(rows[1], (Fields{"q", "u"}));
  EXPECT_EQ(rows[2], (Fields{"multi\r\nline", "z"}));  // CRLF inside quotes is data
  EXPECT_EQ(rows[3], (Fields{"last", "row"}));
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 2, 4, 6}));
}

TEST(Csv, LoneQuoteInUnquotedFieldIsData) {
  auto rows = read_all("a,b\n5\" screen,x\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1], (Fields{"5\" screen", "x"}));
}

TEST(Csv, TextAfterClosingQuoteIsMalformedAndReaderRecovers) {
  CsvReader r("a,b\n\"bad\"x,1\ngood,2\n", "f.csv");
  Fields f;
  std::string err;
  ASSERT_EQ(r.next(f, &err), CsvReader::Status::kRecord);
  ASSERT_EQ(r.next(f, &err), CsvReader::Status::kMalformed);
  EXPECT_EQ(r.line(), 2);
  EXPECT_NE(err.find("after a closing quote"), std::string::npos) << err;
  ASSERT_EQ(r.next(f, &err), CsvReader::Status::kRecord);
  EXPECT_EQ(f, (Fields{"good", "2"}));
  EXPECT_EQ(r.line(), 3);
  EXPECT_EQ(r.next(f, &err), CsvReader::Status::kEnd);
}

TEST(Csv, UnterminatedQuoteIsMalformed) {
  CsvReader r("a,b\n1,\"never closed\n2,3\n", "f.csv");
  Fields f;
  std::string err;
  ASSERT_EQ(r.next(f, &err), CsvReader::Status::kRecord);
  ASSERT_EQ(r.next(f, &err), CsvReader::Status::kMalformed);
  EXPECT_NE(err.find("unterminated"), std::string::npos);
  EXPECT_NE(err.find("line 2"), std::string::npos);
  EXPECT_EQ(r.next(f, &err), CsvReader::Status::kEnd);
}

TEST(Csv, EscapeRoundTrips) {
  Fields in = {"plain", "with,comma", "with \"quote\"", "two\nlines", "cr\r\nlf", ""};
  std::string line;
  for (size_t i = 0; i < in.size(); ++i) line += (i ? "," : "") + csv_escape(in[i]);
  EXPECT_EQ(csv_escape("plain"), "plain");
  EXPECT_EQ(csv_escape("a\"b"), "\"a\"\"b\"");
  auto rows = read_all(line + "\n");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], in);
}

}  // namespace
}  // namespace rarlhf
