// libFuzzer harness: the dataset readers (read_texts). Input byte 0 picks the format (jsonl, csv,
// lines, jigsaw_csv, rtp_jsonl, uci_json) and on_error (skip / fail); byte 1 picks the fields
// (plain names or dotted paths, a score field or none) and min_chars; the rest is the file. Checked:
// the report adds up (kept + filtered + malformed <= rows, at most kMaxProblems problems, each one
// line and bounded), every kept text is longer than min_chars, and the CsvReader on its own
// terminates and names each record's line in order.
#include "fuzz/fuzz_support.h"
#include "rarlhf/data/csv.h"
#include "rarlhf/data/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rarlhf;
  if (size < 2) return 0;
  static const char* const kFormats[] = {"jsonl", "csv", "lines", "jigsaw_csv", "rtp_jsonl", "uci_json"};
  const std::string_view body(reinterpret_cast<const char*>(data) + 2, size - 2);
  DataConfig cfg;
  cfg.format = kFormats[(data[0] >> 1) % 6];
  cfg.on_error = (data[0] & 1) ? "fail" : "skip";
  cfg.text_field = (data[1] & 1) ? "prompt.text" : "text";
  cfg.label_field = (data[1] & 2) ? "" : "label";
  cfg.score_field = (data[1] & 4) ? "score" : "";
  cfg.min_chars = (data[1] >> 3) % 4;
  const std::string name = cfg.format == "jigsaw_csv" ? "train.csv" : "data.txt";
  const std::string path = fuzz::put_file(name, body);
  fuzz::expect_clean([&] {
    ReadReport report;
    const std::vector<TextExample> texts = read_texts(cfg, path, &report);
    if (report.kept != static_cast<int64_t>(texts.size())) fuzz::finding("report.kept != texts returned");
    if (report.kept + report.filtered + report.malformed > report.rows) fuzz::finding("report does not add up");
    if (report.problems.size() > ReadReport::kMaxProblems) fuzz::finding("too many problems kept");
    for (const auto& p : report.problems) {
      if (p.find('\n') != std::string::npos || p.size() > fuzz::kMaxMessage) fuzz::finding("bad problem line: " + p.substr(0, 400));
    }
    for (const auto& t : texts) {
      if (utf8_length(t.text) <= cfg.min_chars) fuzz::finding("kept a text of min_chars or fewer: " + t.where);
    }
  });
  if (cfg.format == "csv") {
    CsvReader reader{std::string(body), path};
    std::vector<std::string> fields;
    std::string error;
    int64_t last_line = 0;
    for (size_t records = 0;; ++records) {
      const CsvReader::Status s = reader.next(fields, &error);
      if (s == CsvReader::Status::kEnd) break;
      if (reader.line() <= last_line) fuzz::finding("CsvReader record lines not increasing");
      last_line = reader.line();
      if (s == CsvReader::Status::kMalformed &&
          (error.find('\n') != std::string::npos || error.size() > fuzz::kMaxMessage)) {
        fuzz::finding("bad CSV error: " + error.substr(0, 400));
      }
      if (records > body.size() + 1) fuzz::finding("CsvReader returns more records than bytes");
    }
  }
  return 0;
}
