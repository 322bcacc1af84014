// Dataset readers: see include/rarlhf/data/dataset.h. One function per format; all of them feed
// a Sink that applies min_chars / max_examples and the on_error policy in one place.
#include "rarlhf/data/dataset.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>
#include <utility>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/strings.h"
#include "rarlhf/common/text_lines.h"
#include "rarlhf/data/csv.h"

namespace rarlhf {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// True the first time a process asks about `key`: a file read twice (eval's prompts and its
// perplexity texts are often one file) warns about its skipped rows once.
bool first_warning_for(const std::string& key) {
  static std::mutex mu;
  static std::set<std::string> seen;
  std::lock_guard<std::mutex> lock(mu);
  return seen.insert(key).second;
}

// Collects examples and applies the filters and the error policy shared by every format.
class Sink {
 public:
  Sink(const DataConfig& cfg, ReadReport& report) : cfg_(cfg), report_(report) {}

  bool full() const { return cfg_.max_examples > 0 && static_cast<int64_t>(out_.size()) >= cfg_.max_examples; }
  void row() { ++report_.rows; }
  void filtered() { ++report_.filtered; }

  void malformed(const std::string& where, const std::string& what) {
    ++report_.malformed;
    std::string msg = where + ": " + what;
    if (cfg_.on_error == choice::OnError::kFail) {
      throw IoError(msg + "; fix the row or set data.on_error=\"skip\" to skip malformed rows");
    }
    if (report_.problems.size() < ReadReport::kMaxProblems) report_.problems.push_back(msg);
  }

  // Keeps `ex` if `measured` (default: ex.text) is longer than min_chars code points.
  void add(TextExample ex, const std::string* measured = nullptr) {
    if (utf8_length(measured ? *measured : ex.text) <= cfg_.min_chars) {
      ++report_.filtered;
      return;
    }
    out_.push_back(std::move(ex));
    ++report_.kept;
  }

  std::vector<TextExample> take() { return std::move(out_); }

 private:
  const DataConfig& cfg_;
  ReadReport& report_;
  std::vector<TextExample> out_;
};

std::string strip_bom(std::string s) {
  if (s.compare(0, 3, "\xEF\xBB\xBF") == 0) s.erase(0, 3);
  return s;
}

// Field lookup by exact key first, then as a dotted path ("prompt.text").
const json* find_field(const json& obj, const std::string& name) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(name);
  if (it != obj.end()) return &*it;
  if (name.find('.') == std::string::npos) return nullptr;
  const json* cur = &obj;
  for (const auto& part : split(name, '.')) {
    if (!cur->is_object()) return nullptr;
    auto jt = cur->find(part);
    if (jt == cur->end()) return nullptr;
    cur = &*jt;
  }
  return cur;
}

// Labels may be strings, integers or booleans; returns false (with *err) otherwise.
bool label_string(const json& v, std::string* out, std::string* err) {
  if (v.is_string()) {
    *out = v.get<std::string>();
  } else if (v.is_boolean()) {
    *out = v.get<bool>() ? "true" : "false";
  } else if (v.is_number_integer()) {
    *out = std::to_string(v.get<int64_t>());
  } else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
             std::abs(v.get<double>()) < 1e15) {
    *out = std::to_string(static_cast<int64_t>(v.get<double>()));  // 1.0 -> "1", like an int label
  } else if (v.is_number()) {
    *out = v.dump();
  } else {
    *err = std::string("label is ") + v.type_name() + "; expected a string, integer or boolean";
    return false;
  }
  return true;
}

bool parse_double(const std::string& text, double* out) {
  std::string t = trim(text);
  if (t.empty()) return false;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size() || errno == ERANGE || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + ("'" + s + "'");
  return out;
}

// ---- jsonl -----------------------------------------------------------------------------------
void read_jsonl(const DataConfig& cfg, const std::string& path, Sink& sink) {
  std::string content = strip_bom(read_file(path));
  for_each_line(content, [&](int64_t line_no, const std::string& line) {
    sink.row();
    std::string where = path + ":" + std::to_string(line_no);
    json row = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_discarded() || !row.is_object()) {
      sink.malformed(where, row.is_discarded() ? "not valid JSON" : "not a JSON object");
      return !sink.full();
    }
    TextExample ex;
    ex.where = where;
    const json* text = find_field(row, cfg.text_field);
    if (!text || !text->is_string()) {
      sink.malformed(where, text ? "field '" + cfg.text_field + "' is not a string"
                                 : "no field '" + cfg.text_field + "' (data.text_field)");
      return !sink.full();
    }
    ex.text = text->get<std::string>();
    if (!cfg.label_field.empty()) {
      const json* label = find_field(row, cfg.label_field);
      std::string err;
      if (!label) {
        sink.malformed(where, "no field '" + cfg.label_field + "' (data.label_field; \"\" = no labels)");
        return !sink.full();
      }
      if (!label_string(*label, &ex.label, &err)) {
        sink.malformed(where, "field '" + cfg.label_field + "': " + err);
        return !sink.full();
      }
    }
    if (!cfg.score_field.empty()) {
      const json* score = find_field(row, cfg.score_field);
      if (!score || !score->is_number()) {
        sink.malformed(where, score ? "field '" + cfg.score_field + "' is not a number"
                                    : "no field '" + cfg.score_field + "' (data.score_field)");
        return !sink.full();
      }
      ex.given_score = score->get<double>();
    }
    sink.add(std::move(ex));
    return !sink.full();
  });
}

// ---- csv / jigsaw_csv --------------------------------------------------------------------------
struct CsvTable {
  std::vector<std::string> header;
  int column(const std::string& name) const {
    auto it = std::find(header.begin(), header.end(), name);
    return it == header.end() ? -1 : static_cast<int>(it - header.begin());
  }
};

CsvTable read_header(CsvReader& reader) {
  CsvTable t;
  std::string err;
  auto st = reader.next(t.header, &err);
  if (st == CsvReader::Status::kEnd) throw IoError(reader.path() + ": empty CSV file; expected a header row");
  if (st == CsvReader::Status::kMalformed) throw IoError(reader.path() + ":1: bad header row: " + err);
  return t;
}

int require_column(const CsvTable& t, const std::string& path, const std::string& name, const std::string& key) {
  int c = t.column(name);
  if (c < 0) {
    std::string hint = did_you_mean(name, t.header);
    throw ConfigError(path + ": no column '" + excerpt(name) + "' in the header (columns: " + excerpt(join(t.header), 200) +
                      ")" + (hint.empty() ? "" : "; did you mean '" + excerpt(hint) + "'?") + "; set " + key);
  }
  return c;
}

// Reads data records; calls fn(where, fields) for those with the header's field count.
template <class Fn>
void for_each_record(CsvReader& reader, const CsvTable& t, Sink& sink, Fn&& fn) {
  std::vector<std::string> fields;
  std::string err;
  while (!sink.full()) {
    auto st = reader.next(fields, &err);
    if (st == CsvReader::Status::kEnd) break;
    sink.row();
    std::string where = reader.path() + ":" + std::to_string(reader.line());
    // A bad record over several lines is most often one stray quote: say how far it reached.
    // (Built only for bad records; multi-line reviews that parse are common.)
    const int64_t span = reader.end_line() - reader.line();
    auto joined = [&] {
      return " (the record runs to line " + std::to_string(reader.end_line()) + ": a stray quote opening a field joins the " +
             std::to_string(span) + " line(s) after it into one record)";
    };
    if (st == CsvReader::Status::kMalformed) {
      sink.malformed(where, err + (span > 0 && err.find("unterminated") == std::string::npos ? joined() : ""));
      continue;
    }
    if (fields.size() != t.header.size()) {
      sink.malformed(where, std::to_string(fields.size()) + " fields, header has " + std::to_string(t.header.size()) +
                                (span > 0 ? joined() : " (unquoted comma in a field?)"));
      continue;
    }
    fn(where, fields);
  }
}

void read_csv(const DataConfig& cfg, const std::string& path, Sink& sink) {
  CsvReader reader(read_file(path), path);
  CsvTable t = read_header(reader);
  int text_col = require_column(t, path, cfg.text_field, "data.text_field");
  int label_col = cfg.label_field.empty() ? -1 : require_column(t, path, cfg.label_field, "data.label_field");
  int score_col = cfg.score_field.empty() ? -1 : require_column(t, path, cfg.score_field, "data.score_field");
  for_each_record(reader, t, sink, [&](const std::string& where, const std::vector<std::string>& f) {
    TextExample ex;
    ex.where = where;
    ex.text = f[text_col];
    if (label_col >= 0) ex.label = f[label_col];
    if (score_col >= 0 && !parse_double(f[score_col], &ex.given_score)) {
      sink.malformed(where, "column '" + cfg.score_field + "' is not a number: '" + excerpt(f[score_col]) + "'");
      return;
    }
    sink.add(std::move(ex));
  });
}

// Kaggle's test.csv has no labels: they are in test_labels.csv (id, toxic, ...; -1 = unscored).
std::unordered_map<std::string, std::string> read_jigsaw_test_labels(const std::string& path) {
  CsvReader reader(read_file(path), path);
  CsvTable t = read_header(reader);
  int id_col = require_column(t, path, "id", "the file to Kaggle's test_labels.csv");
  int toxic_col = require_column(t, path, "toxic", "the file to Kaggle's test_labels.csv");
  std::unordered_map<std::string, std::string> labels;
  std::vector<std::string> fields;
  std::string err;
  for (;;) {
    auto st = reader.next(fields, &err);
    if (st == CsvReader::Status::kEnd) break;
    if (st == CsvReader::Status::kMalformed || fields.size() != t.header.size()) {
      throw IoError(path + ":" + std::to_string(reader.line()) + ": malformed row" +
                    (err.empty() ? "" : " (" + err + ")") + "; re-download test_labels.csv");
    }
    labels[fields[id_col]] = trim(fields[toxic_col]);
  }
  return labels;
}

void read_jigsaw_csv(const DataConfig& cfg, const std::string& path, Sink& sink) {
  CsvReader reader(read_file(path), path);
  CsvTable t = read_header(reader);
  int text_col = require_column(t, path, "comment_text", "data.path to a Jigsaw train.csv/test.csv");
  int toxic_col = t.column("toxic");
  int id_col = t.column("id");
  std::unordered_map<std::string, std::string> test_labels;
  if (toxic_col < 0) {
    std::string labels_path = (fs::path(path).parent_path() / "test_labels.csv").string();
    if (id_col < 0 || !file_exists(labels_path)) {
      throw ConfigError(path + ": no 'toxic' column; for Kaggle's test.csv put test_labels.csv beside it "
                        "(joined on 'id'), or use train.csv");
    }
    test_labels = read_jigsaw_test_labels(labels_path);
  }
  const std::string score_name = cfg.score_field.empty() ? "reward" : cfg.score_field;
  int score_col = t.column(score_name);
  if (score_col < 0 && !cfg.score_field.empty()) {
    require_column(t, path, cfg.score_field, "data.score_field");
  }
  for_each_record(reader, t, sink, [&](const std::string& where, const std::vector<std::string>& f) {
    std::string toxic;
    if (toxic_col >= 0) {
      toxic = trim(f[toxic_col]);
    } else {
      auto it = test_labels.find(f[id_col]);
      if (it == test_labels.end()) {
        sink.malformed(where, "id '" + excerpt(f[id_col]) + "' is not in test_labels.csv");
        return;
      }
      toxic = it->second;
    }
    TextExample ex;
    ex.where = where;
    ex.text = f[text_col];
    if (toxic == "1") {
      ex.label = "toxic";
    } else if (toxic == "0") {
      ex.label = "non-toxic";
    } else if (toxic == "-1") {
      sink.filtered();  // Kaggle: not used for scoring, so unlabelled
      return;
    } else {
      sink.malformed(where, "toxic is '" + excerpt(toxic) + "'; expected 0 or 1");
      return;
    }
    if (score_col >= 0 && !parse_double(f[score_col], &ex.given_score)) {
      sink.malformed(where, "column '" + score_name + "' is not a number: '" + excerpt(f[score_col]) + "'");
      return;
    }
    sink.add(std::move(ex));
  });
}

// ---- lines -----------------------------------------------------------------------------------
void read_lines(const std::string& path, Sink& sink) {
  std::string content = strip_bom(read_file(path));
  for_each_line(content, [&](int64_t line_no, const std::string& line) {
    sink.row();
    TextExample ex;
    ex.where = path + ":" + std::to_string(line_no);
    ex.text = line;
    sink.add(std::move(ex));
    return !sink.full();
  });
}

// ---- imdb_dir --------------------------------------------------------------------------------
std::string clean_imdb(const std::string& raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size();) {
    // IMDB reviews mark line breaks as <br />, sometimes <br/> or <br>.
    bool br = false;
    for (const char* tag : {"<br />", "<br/>", "<br>"}) {
      size_t len = std::char_traits<char>::length(tag);
      if (raw.compare(i, len, tag) == 0) {
        out += '\n';
        i += len;
        br = true;
        break;
      }
    }
    if (!br) out += raw[i++];
  }
  return trim(out);
}

std::vector<fs::path> imdb_files(const fs::path& dir) {
  std::vector<std::pair<long long, fs::path>> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".txt") continue;
    // aclImdb names reviews <id>_<rating>.txt: order by id so the order is the same everywhere.
    std::string stem = entry.path().stem().string();
    char* end = nullptr;
    long long id = std::strtoll(stem.c_str(), &end, 10);
    if (end == stem.c_str()) id = -1;
    files.emplace_back(id, entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<fs::path> out;
  for (auto& f : files) out.push_back(std::move(f.second));
  return out;
}

void read_imdb_dir(const DataConfig& cfg, const std::string& path, Sink& sink) {
  fs::path dir(path);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw IoError(path + ": not a directory; for format imdb_dir point the path at aclImdb/train or aclImdb/test");
  }
  if (!fs::is_directory(dir / "pos", ec) || !fs::is_directory(dir / "neg", ec)) {
    if (fs::is_directory(dir / "train", ec) || fs::is_directory(dir / "test", ec)) {
      throw ConfigError(path + ": this is the aclImdb root; set data.train_path to " + (dir / "train").string() +
                        " and data.test_path to " + (dir / "test").string());
    }
    throw IoError(path + ": no pos/ and neg/ folders; expected an aclImdb split folder (aclImdb/train or aclImdb/test)");
  }
  std::vector<fs::path> neg = imdb_files(dir / "neg");
  std::vector<fs::path> pos = imdb_files(dir / "pos");
  // Interleave neg/pos so that max_examples keeps the classes balanced.
  for (size_t i = 0; i < std::max(neg.size(), pos.size()) && !sink.full(); ++i) {
    for (int cls = 0; cls < 2 && !sink.full(); ++cls) {
      const auto& list = cls == 0 ? neg : pos;
      if (i >= list.size()) continue;
      sink.row();
      std::string where = list[i].string();
      std::string raw;
      try {
        raw = read_file(where);
      } catch (const IoError&) {
        sink.malformed(where, "cannot read the review");
        continue;
      }
      TextExample ex;
      ex.where = where;
      ex.label = cls == 0 ? "neg" : "pos";
      // HF's `imdb` (the paper's data) holds each review file's text unchanged, <br /> tags and all.
      ex.text = cfg.imdb_line_breaks == choice::LineBreaks::kNewline ? clean_imdb(raw) : raw;
      if (trim(ex.text).empty()) {
        sink.filtered();
        continue;
      }
      sink.add(std::move(ex), &raw);  // the paper filters len(text) > 200 on the raw HF text
    }
  }
}

// ---- rtp_jsonl -------------------------------------------------------------------------------
void read_rtp_jsonl(const std::string& path, Sink& sink) {
  std::string content = strip_bom(read_file(path));
  for_each_line(content, [&](int64_t line_no, const std::string& line) {
    sink.row();
    std::string where = path + ":" + std::to_string(line_no);
    json row = json::parse(line, nullptr, false);
    const json* text = row.is_discarded() ? nullptr : find_field(row, "prompt.text");
    if (!text || !text->is_string()) {
      sink.malformed(where, row.is_discarded() ? "not valid JSON" : "no string prompt.text");
      return !sink.full();
    }
    const json* tox = find_field(row, "prompt.toxicity");
    if (!tox || tox->is_null()) {
      sink.filtered();  // RTP leaves toxicity null where Perspective gave no score
      return !sink.full();
    }
    if (!tox->is_number()) {
      sink.malformed(where, "prompt.toxicity is not a number");
      return !sink.full();
    }
    TextExample ex;
    ex.where = where;
    ex.text = text->get<std::string>();
    ex.label = tox->get<double>() >= 0.5 ? "toxic" : "non-toxic";  // paper: toxic = Perspective >= 0.5
    const json* cont = find_field(row, "continuation.text");
    if (cont && cont->is_string()) ex.reference = cont->get<std::string>();
    sink.add(std::move(ex));
    return !sink.full();
  });
}

// ---- uci_json --------------------------------------------------------------------------------
void read_uci_json(const std::string& path, Sink& sink) {
  json arr = json::parse(strip_bom(read_file(path)), nullptr, false);
  if (arr.is_discarded() || !arr.is_array()) {
    throw IoError(path + ": not a JSON array of {\"text\", \"class\"} (format uci_json, npm sentiment fixtures)");
  }
  for (size_t i = 0; i < arr.size() && !sink.full(); ++i) {
    sink.row();
    std::string where = path + ":item " + std::to_string(i + 1);
    const json& item = arr[i];
    const json* text = find_field(item, "text");
    const json* cls = find_field(item, "class");
    if (!text || !text->is_string()) {
      sink.malformed(where, "no string 'text'");
      continue;
    }
    std::string t = trim(text->get<std::string>());
    if (t.empty()) {
      sink.filtered();  // the fixtures end with {"text": "", "class": null}
      continue;
    }
    if (!cls || !cls->is_number_integer() || (cls->get<int64_t>() != 0 && cls->get<int64_t>() != 1)) {
      sink.malformed(where, "'class' must be 0 or 1");
      continue;
    }
    TextExample ex;
    ex.where = where;
    ex.text = t;
    ex.label = cls->get<int64_t>() == 1 ? "pos" : "neg";
    sink.add(std::move(ex));
  }
}

}  // namespace

int64_t utf8_length(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string utf8_prefix(const std::string& s, int64_t n) {
  int64_t seen = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (seen == n) return s.substr(0, i);
      ++seen;
    }
  }
  return s;
}

std::vector<TextExample> filter_label(const std::vector<TextExample>& examples, const std::string& label) {
  if (label.empty()) return examples;
  std::vector<TextExample> out;
  for (const auto& ex : examples) {
    if (ex.label == label) out.push_back(ex);
  }
  return out;
}

std::vector<TextExample> read_texts(const DataConfig& cfg, const std::string& path, ReadReport* report) {
  // A DataConfig built in code has not been through validate(): check the two keys dispatched on here.
  using choice::DataFormat;
  auto listed = [](const std::vector<std::string>& all) {
    std::string list;
    for (const auto& x : all) list += (list.empty() ? "" : " | ") + x;
    return list;
  };
  if (std::find(DataFormat::kAll.begin(), DataFormat::kAll.end(), cfg.format) == DataFormat::kAll.end()) {
    std::string hint = did_you_mean(cfg.format, DataFormat::kAll);
    throw ConfigError("data.format: unknown format '" + cfg.format + "'" +
                      (hint.empty() ? "" : "; did you mean '" + hint + "'?") + " (" + listed(DataFormat::kAll) + ")");
  }
  const auto& on_error = choice::OnError::kAll;
  if (std::find(on_error.begin(), on_error.end(), cfg.on_error) == on_error.end()) {
    throw ConfigError("data.on_error: '" + cfg.on_error + "'; use " + choice::OnError::kSkip + " or " +
                      choice::OnError::kFail);
  }
  if (path.empty()) throw ConfigError("data: no path given; set data.train_path / data.test_path");
  std::error_code ec;
  if (cfg.format != DataFormat::kImdbDir && fs::is_directory(path, ec)) {
    throw IoError(path + ": is a directory; format " + cfg.format + " reads one file (a folder of aclImdb "
                  "reviews is format imdb_dir)");
  }
  ReadReport local;
  ReadReport& rep = report ? *report : local;
  rep = ReadReport{};
  Sink sink(cfg, rep);
  if (cfg.format == DataFormat::kJsonl) {
    read_jsonl(cfg, path, sink);
  } else if (cfg.format == DataFormat::kCsv) {
    read_csv(cfg, path, sink);
  } else if (cfg.format == DataFormat::kLines) {
    read_lines(path, sink);
  } else if (cfg.format == DataFormat::kImdbDir) {
    read_imdb_dir(cfg, path, sink);
  } else if (cfg.format == DataFormat::kJigsawCsv) {
    read_jigsaw_csv(cfg, path, sink);
  } else if (cfg.format == DataFormat::kRtpJsonl) {
    read_rtp_jsonl(path, sink);
  } else {  // DataFormat::kUciJson, the last one left
    read_uci_json(path, sink);
  }
  if (rep.malformed > 0 && first_warning_for(path + "\n" + cfg.format)) {
    RARLHF_LOG_WARN("{}: skipped {} malformed row(s) of {}; first: {}", path, rep.malformed, rep.rows,
                    rep.problems.empty() ? "" : rep.problems.front());
  }
  if (rep.kept == 0) {
    throw IoError(path + ": no usable text (" + std::to_string(rep.rows) + " rows, " + std::to_string(rep.filtered) +
                  " filtered, " + std::to_string(rep.malformed) + " malformed" +
                  (rep.problems.empty() ? "" : "; first: " + rep.problems.front()) +
                  "); check data.format, data.text_field and data.min_chars");
  }
  RARLHF_LOG_DEBUG("{}: {} texts ({} rows, {} filtered, {} malformed)", path, rep.kept, rep.rows, rep.filtered,
                   rep.malformed);
  return sink.take();
}

}  // namespace rarlhf
