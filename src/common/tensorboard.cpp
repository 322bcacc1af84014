// TensorBoard event files: see include/rarlhf/common/tensorboard.h for the format.
#include "rarlhf/common/tensorboard.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "rarlhf/common/error.h"

namespace rarlhf {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFilePrefix = "events.out.tfevents.";

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // reflected Castagnoli
      t[i] = c;
    }
    return t;
  }();
  return table;
}

// Protobuf wire format, the few pieces an Event needs.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_key(std::string& out, int field, int wire_type) { put_varint(out, static_cast<uint64_t>(field << 3 | wire_type)); }
template <class T>
void put_le(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // x86-64 and aarch64 Linux are little endian, as the format is
  out.append(b, sizeof(T));
}
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}
std::string event_head(double wall_time, int64_t step) {
  std::string e;
  put_key(e, 1, 1);
  put_le(e, wall_time);
  if (step != 0) {
    put_key(e, 2, 0);
    put_varint(e, static_cast<uint64_t>(step));
  }
  return e;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A reader over one protobuf message; errors name the file and the record's offset.
class Fields {
 public:
  Fields(const std::string& bytes, std::string where) : s_(bytes), where_(std::move(where)) {}
  bool next(int& field, int& wire) {
    if (pos_ >= s_.size()) return false;
    const uint64_t key = varint();
    field = static_cast<int>(key >> 3);
    wire = static_cast<int>(key & 7);
    return true;
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= s_.size()) fail("truncated varint");
      const auto b = static_cast<unsigned char>(s_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint longer than 10 bytes");
  }
  template <class T>
  T fixed() {
    if (s_.size() - pos_ < sizeof(T)) fail("truncated fixed-width field");
    T v;
    std::memcpy(&v, s_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string bytes() {
    const uint64_t n = varint();
    if (n > s_.size() - pos_) fail("a length-delimited field runs past the record");
    std::string out = s_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  void skip(int wire) {
    switch (wire) {
      case 0: varint(); break;
      case 1: fixed<uint64_t>(); break;
      case 2: bytes(); break;
      case 5: fixed<uint32_t>(); break;
      default: fail("wire type " + std::to_string(wire) + " is not used by event.proto");
    }
  }
  [[noreturn]] void fail(const std::string& what) const { throw IoError(where_ + ": " + what); }

 private:
  const std::string& s_;
  std::string where_;
  size_t pos_ = 0;
};

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  const auto& t = crc_table();
  uint32_t c = 0xFFFFFFFFu;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) c = t[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t c = crc32c(data, size);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string frame_record(const std::string& payload) {
  std::string out;
  put_le(out, static_cast<uint64_t>(payload.size()));
  put_le(out, masked_crc32c(out.data(), 8));
  out += payload;
  put_le(out, masked_crc32c(payload.data(), payload.size()));
  return out;
}

std::string encode_file_version_event(double wall_time) {
  std::string e = event_head(wall_time, 0);
  put_bytes(e, 3, "brain.Event:2");
  return e;
}

std::string encode_session_start_event(double wall_time, int64_t step) {
  std::string log;
  put_key(log, 1, 0);
  put_varint(log, 1);  // SessionLog.START
  std::string e = event_head(wall_time, step);
  put_bytes(e, 7, log);
  return e;
}

std::string encode_scalar_event(double wall_time, int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  std::string summary;
  for (const auto& [tag, v] : values) {
    std::string value;
    put_bytes(value, 1, tag);
    put_key(value, 2, 5);
    put_le(value, static_cast<float>(v));
    put_bytes(summary, 1, value);
  }
  std::string e = event_head(wall_time, step);
  put_bytes(e, 5, summary);
  return e;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir, int64_t resumed_step) {
  make_dirs(dir);
  // TensorBoard orders a folder's event files by name: this one must come after every earlier one,
  // also when a resume starts within the second the stopped run's file was named in.
  const double now = now_seconds();
  long long stamp = static_cast<long long>(now);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kFilePrefix, 0) != 0) continue;
    const long long other = std::atoll(name.c_str() + std::strlen(kFilePrefix));
    if (other >= stamp) stamp = other + 1;
  }
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  const std::string path = (fs::path(dir) / (std::string(kFilePrefix) + std::to_string(stamp) + "." + host + "." +
                                              std::to_string(::getpid()) + ".rarlhf"))
                               .string();
  out_ = std::make_unique<AppendFile>(path);
  std::string head = frame_record(encode_file_version_event(now));
  if (resumed_step >= 0) head += frame_record(encode_session_start_event(now, resumed_step));
  out_->append(head);
}

void TensorBoardWriter::scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  if (values.empty()) return;
  out_->append(frame_record(encode_scalar_event(now_seconds(), step, values)));
}

EventFileContents read_event_file(const std::string& path) {
  const std::string data = read_file(path);
  EventFileContents out;
  size_t pos = 0;
  while (pos < data.size()) {
    const std::string where = path + ": record at byte " + std::to_string(pos);
    if (data.size() - pos < 12) throw IoError(where + ": truncated header");
    uint64_t len;
    uint32_t len_crc;
    std::memcpy(&len, data.data() + pos, 8);
    std::memcpy(&len_crc, data.data() + pos + 8, 4);
    if (len_crc != masked_crc32c(data.data() + pos, 8)) throw IoError(where + ": length CRC mismatch");
    if (len > data.size() - pos - 12 || data.size() - pos - 12 - len < 4) throw IoError(where + ": truncated record");
    const std::string payload = data.substr(pos + 12, len);
    uint32_t crc;
    std::memcpy(&crc, data.data() + pos + 12 + len, 4);
    if (crc != masked_crc32c(payload.data(), payload.size())) throw IoError(where + ": payload CRC mismatch");
    pos += 16 + len;

    Fields ev(payload, where);
    double wall_time = 0;
    int64_t step = 0;
    std::vector<std::pair<std::string, float>> values;
    bool session_start = false;
    int field = 0, wire = 0;
    while (ev.next(field, wire)) {
      if (field == 1 && wire == 1) {
        wall_time = ev.fixed<double>();
      } else if (field == 2 && wire == 0) {
        step = static_cast<int64_t>(ev.varint());
      } else if (field == 3 && wire == 2) {
        out.file_version = ev.bytes();
      } else if (field == 5 && wire == 2) {
        const std::string summary = ev.bytes();
        Fields sm(summary, where);
        while (sm.next(field, wire)) {
          if (field != 1 || wire != 2) {
            sm.skip(wire);
            continue;
          }
          const std::string value = sm.bytes();
          Fields vf(value, where);
          std::string tag;
          bool simple = false;
          float v = 0;
          while (vf.next(field, wire)) {
            if (field == 1 && wire == 2) {
              tag = vf.bytes();
            } else if (field == 2 && wire == 5) {
              v = vf.fixed<float>();
              simple = true;
            } else {
              vf.skip(wire);
            }
          }
          if (simple) values.emplace_back(tag, v);
        }
      } else if (field == 7 && wire == 2) {
        const std::string log = ev.bytes();
        Fields lf(log, where);
        while (lf.next(field, wire)) {
          if (field == 1 && wire == 0) {
            session_start = lf.varint() == 1;
          } else {
            lf.skip(wire);
          }
        }
      } else {
        ev.skip(wire);
      }
    }
    if (session_start) out.session_starts.push_back(step);
    for (auto& [tag, v] : values) out.scalars.push_back({tag, step, wall_time, v});
  }
  return out;
}

}  // namespace rarlhf
