// GGUF reader and dequantization: see include/rarlhf/io/gguf.h. Block layouts and dequantization
// rules follow ggml (ggml-common.h block_q4_0 ... block_q6_K, ggml-quants.c dequantize_row_*); the
// results are checked against gguf-py's dequantize() (tests/io/gguf_test.cpp).
#include "rarlhf/io/gguf.h"

#include <ATen/ops/empty.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "rarlhf/common/error.h"
#include "rarlhf/common/strings.h"

namespace rarlhf {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxArrayDepth = 4;
constexpr uint64_t kMaxDims = 4;  // GGML_MAX_DIMS

enum ValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

struct TypeTraits {
  uint32_t id;
  const char* name;
  int64_t block;     // values per block
  uint64_t bytes;    // bytes per block
  bool read;         // dequantized here
};
// ggml.c type_traits (block size, type size) for the common types; `read` marks those dequantized here.
const TypeTraits kTypes[] = {
    {0, "F32", 1, 4, true},       {1, "F16", 1, 2, true},       {2, "Q4_0", 32, 18, true},
    {3, "Q4_1", 32, 20, true},    {6, "Q5_0", 32, 22, true},    {7, "Q5_1", 32, 24, true},
    {8, "Q8_0", 32, 34, true},    {9, "Q8_1", 32, 36, false},   {10, "Q2_K", 256, 84, false},
    {11, "Q3_K", 256, 110, false}, {12, "Q4_K", 256, 144, true}, {13, "Q5_K", 256, 176, true},
    {14, "Q6_K", 256, 210, true}, {15, "Q8_K", 256, 292, false}, {24, "I8", 1, 1, false},
    {25, "I16", 1, 2, false},     {26, "I32", 1, 4, false},     {27, "I64", 1, 8, false},
    {28, "F64", 1, 8, false},     {30, "BF16", 1, 2, true},
};

const TypeTraits* traits(uint32_t id) {
  for (const auto& t : kTypes)
    if (t.id == id) return &t;
  return nullptr;
}

std::string read_types_list() {
  std::string s;
  for (const auto& t : kTypes)
    if (t.read) s += (s.empty() ? "" : ", ") + std::string(t.name);
  return s;
}

// IEEE half -> float, exact (subnormals, inf, NaN).
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    bits = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t u16_at(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
float f16_at(const uint8_t* p) { return half_to_float(u16_at(p)); }

// ggml-quants.c get_scale_min_k4: the 6-bit scale and min of sub-block j from the 12 packed bytes.
void scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

void deq_q4_0(const uint8_t* b, float* y) {  // d, qs[16]
  const float d = f16_at(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
    y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

void deq_q4_1(const uint8_t* b, float* y) {  // d, m, qs[16]
  const float d = f16_at(b), m = f16_at(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
    y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

void deq_q5(const uint8_t* b, float* y, bool with_min) {  // d, [m], qh[4], qs[16]
  const float d = f16_at(b), m = with_min ? f16_at(b + 2) : 0.0f;
  const uint8_t* qhp = b + (with_min ? 4 : 2);
  uint32_t qh;
  std::memcpy(&qh, qhp, 4);  // little-endian, as the file
  const uint8_t* qs = qhp + 4;
  for (int j = 0; j < 16; ++j) {
    const int xh0 = static_cast<int>(((qh >> j) << 4) & 0x10);
    const int xh1 = static_cast<int>((qh >> (j + 12)) & 0x10);
    const int x0 = ((qs[j] & 0x0F) | xh0) - (with_min ? 0 : 16);
    const int x1 = ((qs[j] >> 4) | xh1) - (with_min ? 0 : 16);
    y[j] = with_min ? static_cast<float>(x0) * d + m : static_cast<float>(x0) * d;
    y[j + 16] = with_min ? static_cast<float>(x1) * d + m : static_cast<float>(x1) * d;
  }
}

void deq_q8_0(const uint8_t* b, float* y) {  // d, qs[32] int8
  const float d = f16_at(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

void deq_q4_k(const uint8_t* b, float* y) {  // d, dmin, scales[12], qs[128]
  const float d = f16_at(b), dmin = f16_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  int is = 0;
  for (int j = 0; j < 256; j += 64) {
    uint8_t sc, m;
    scale_min_k4(is, scales, &sc, &m);
    const float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    q += 32;
    is += 2;
  }
}

void deq_q5_k(const uint8_t* b, float* y) {  // d, dmin, scales[12], qh[32], qs[128]
  const float d = f16_at(b), dmin = f16_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  int is = 0;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0; j < 256; j += 64) {
    uint8_t sc, m;
    scale_min_k4(is, scales, &sc, &m);
    const float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    ql += 32;
    is += 2;
    u1 = static_cast<uint8_t>(u1 << 2);
    u2 = static_cast<uint8_t>(u2 << 2);
  }
}

void deq_q6_k(const uint8_t* b, float* y) {  // ql[128], qh[64], scales[16] int8, d
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = f16_at(b + 208);
  for (int n = 0; n < 256; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

// Bounds-checked reads over the mapped header.
struct Cursor {
  const uint8_t* data;
  size_t size;
  size_t pos = 0;
  const std::string& path;

  [[noreturn]] void fail(const std::string& what) const {
    throw IoError(path + ": " + what + " (at byte " + std::to_string(pos) + "); not a valid GGUF file");
  }
  void need(uint64_t n, const std::string& what) const {
    if (n > size - pos) fail(what + " runs past the end of the file (" + std::to_string(size) + " bytes)");
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::string str(const std::string& what) {
    const uint64_t n = read<uint64_t>(what + " length");
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data + pos), n);
    pos += n;
    return s;
  }
  json value(uint32_t type, const std::string& what, uint64_t depth) {
    switch (type) {
      case kU8: return read<uint8_t>(what);
      case kI8: return read<int8_t>(what);
      case kU16: return read<uint16_t>(what);
      case kI16: return read<int16_t>(what);
      case kU32: return read<uint32_t>(what);
      case kI32: return read<int32_t>(what);
      case kF32: return read<float>(what);
      case kU64: return read<uint64_t>(what);
      case kI64: return read<int64_t>(what);
      case kF64: return read<double>(what);
      case kBool: {
        const uint8_t b = read<uint8_t>(what);
        if (b > 1) fail(what + ": a bool of value " + std::to_string(b));
        return b == 1;
      }
      case kString: return str(what);
      case kArray: {
        if (depth >= kMaxArrayDepth) fail(what + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
        const uint32_t et = read<uint32_t>(what + " element type");
        if (et > kF64) fail(what + ": array element type " + std::to_string(et) + " is not a GGUF value type");
        const uint64_t n = read<uint64_t>(what + " array length");
        // Every element takes at least one byte (8 for a string or array length): a length the rest
        // of the file cannot hold is corrupt, refused before anything is allocated.
        const uint64_t min_bytes = et == kString || et == kArray ? 8 : (et == kU8 || et == kI8 || et == kBool) ? 1
                                   : (et == kU16 || et == kI16) ? 2 : (et == kU32 || et == kI32 || et == kF32) ? 4 : 8;
        if (n > (size - pos) / min_bytes) fail(what + ": an array of " + std::to_string(n) + " elements runs past the end of the file");
        json a = json::array();
        a.get_ref<json::array_t&>().reserve(n);
        for (uint64_t i = 0; i < n; ++i) a.push_back(value(et, what, depth + 1));
        return a;
      }
      default: fail(what + ": value type " + std::to_string(type) + " is not a GGUF value type");
    }
  }
};

}  // namespace

std::string ggml_type_name(uint32_t type) {
  const TypeTraits* t = traits(type);
  return t ? t->name : "type " + std::to_string(type);
}

uint64_t ggml_row_bytes(uint32_t type, int64_t n) {
  const TypeTraits* t = traits(type);
  if (!t || !t->read || n < 0 || n % t->block != 0) return 0;
  return static_cast<uint64_t>(n / t->block) * t->bytes;
}

void dequantize_ggml(uint32_t type, const uint8_t* src, size_t bytes, int64_t n, float* out, const std::string& what) {
  const TypeTraits* t = traits(type);
  if (!t || !t->read)
    throw IoError(what + ": tensor type " + ggml_type_name(type) + " is not read by rarlhf (read: " + read_types_list() +
                  "); requantize the file with llama.cpp's llama-quantize, e.g. to Q8_0 or Q4_K_M");
  if (n % t->block != 0 || ggml_row_bytes(type, n) != bytes)
    throw IoError(what + ": " + std::to_string(bytes) + " bytes do not hold " + std::to_string(n) + " " + t->name + " values");
  const int64_t blocks = n / t->block;
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32: std::memcpy(out, src, bytes); return;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i) out[i] = f16_at(src + 2 * i);
      return;
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t bits = static_cast<uint32_t>(u16_at(src + 2 * i)) << 16;
        std::memcpy(out + i, &bits, 4);
      }
      return;
    default: break;
  }
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* blk = src + b * static_cast<int64_t>(t->bytes);
    float* y = out + b * t->block;
    switch (static_cast<GgmlType>(type)) {
      case GgmlType::kQ4_0: deq_q4_0(blk, y); break;
      case GgmlType::kQ4_1: deq_q4_1(blk, y); break;
      case GgmlType::kQ5_0: deq_q5(blk, y, false); break;
      case GgmlType::kQ5_1: deq_q5(blk, y, true); break;
      case GgmlType::kQ8_0: deq_q8_0(blk, y); break;
      case GgmlType::kQ4_K: deq_q4_k(blk, y); break;
      case GgmlType::kQ5_K: deq_q5_k(blk, y); break;
      case GgmlType::kQ6_K: deq_q6_k(blk, y); break;
      default: throw IoError(what + ": tensor type " + ggml_type_name(type) + " is not read by rarlhf");
    }
  }
}

GgufFile::GgufFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IoError(path + ": not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ < 24) {
    ::close(fd);
    throw IoError(path + ": " + std::to_string(size_) + " bytes, too short for a GGUF header; not a valid GGUF file");
  }
  void* addr = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (addr == MAP_FAILED) throw IoError(path + ": mmap failed (" + std::strerror(errno) + ")");
  data_ = static_cast<const uint8_t*>(addr);
  try {
    Cursor c{data_, size_, 0, path_};
    if (std::memcmp(data_, "GGUF", 4) != 0) c.fail("the file does not start with the magic \"GGUF\"");
    c.pos = 4;
    version_ = c.read<uint32_t>("version");
    if (version_ == 1) c.fail("GGUF version 1 (32-bit counts) is not read; re-convert it with a current llama.cpp");
    if (version_ != 2 && version_ != 3) c.fail("GGUF version " + std::to_string(version_) + " (read: 2 and 3)");
    const uint64_t n_tensors = c.read<uint64_t>("tensor count");
    const uint64_t n_kv = c.read<uint64_t>("metadata count");
    // A key/value takes >= 12 bytes, a tensor entry >= 24: counts the file cannot hold are corrupt.
    if (n_kv > (size_ - c.pos) / 12) c.fail("metadata count " + std::to_string(n_kv) + " exceeds what the file holds");
    if (n_tensors > (size_ - c.pos) / 24) c.fail("tensor count " + std::to_string(n_tensors) + " exceeds what the file holds");
    for (uint64_t i = 0; i < n_kv; ++i) {
      const std::string key = c.str("metadata key " + std::to_string(i));
      if (key.empty()) c.fail("metadata key " + std::to_string(i) + " is empty");
      if (metadata_.contains(key)) c.fail("metadata key " + excerpt(key) + " appears twice");
      const uint32_t type = c.read<uint32_t>("metadata " + excerpt(key) + " type");
      metadata_[key] = c.value(type, "metadata " + excerpt(key), 0);
      types_.emplace_back(key, type);
    }
    if (metadata_.contains("general.alignment")) {
      if (type_of("general.alignment") != kU32) c.fail("metadata general.alignment is not a uint32");
      alignment_ = metadata_["general.alignment"].get<uint64_t>();
      if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0 || alignment_ > (1u << 20))
        c.fail("metadata general.alignment " + std::to_string(alignment_) + " is not a power of two up to 1 MiB");
    }
    std::set<std::string> names;
    for (uint64_t i = 0; i < n_tensors; ++i) {
      GgufTensorInfo t;
      t.name = c.str("tensor " + std::to_string(i) + " name");
      const std::string what = "tensor " + (t.name.empty() ? std::to_string(i) : excerpt(t.name));
      if (t.name.empty()) c.fail(what + ": empty name");
      if (!names.insert(t.name).second) c.fail(what + " appears twice");
      const uint32_t n_dims = c.read<uint32_t>(what + " dimension count");
      if (n_dims == 0 || n_dims > kMaxDims) c.fail(what + ": " + std::to_string(n_dims) + " dimensions (1 to 4)");
      uint64_t elems = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        const uint64_t ne = c.read<uint64_t>(what + " dimension");
        if (ne == 0 || ne > (1ull << 40) || elems > (1ull << 50) / ne)
          c.fail(what + ": dimension " + std::to_string(d) + " of " + std::to_string(ne) + " elements");
        elems *= ne;
        t.ne.push_back(static_cast<int64_t>(ne));
      }
      t.type = c.read<uint32_t>(what + " type");
      const TypeTraits* tt = traits(t.type);
      if (!tt || !tt->read)
        c.fail(what + ": tensor type " + ggml_type_name(t.type) + " is not read by rarlhf (read: " + read_types_list() +
               "); requantize the file with llama.cpp's llama-quantize, e.g. to Q8_0 or Q4_K_M");
      if (t.ne[0] % tt->block != 0)
        c.fail(what + ": a row of " + std::to_string(t.ne[0]) + " values is not whole " + tt->name + " blocks of " +
               std::to_string(tt->block));
      t.bytes = elems / static_cast<uint64_t>(tt->block) * tt->bytes;
      t.offset = c.read<uint64_t>(what + " offset");
      if (t.offset % alignment_ != 0)
        c.fail(what + ": offset " + std::to_string(t.offset) + " is not a multiple of the alignment " + std::to_string(alignment_));
      tensors_.push_back(std::move(t));
    }
    data_start_ = (c.pos + alignment_ - 1) / alignment_ * alignment_;
    if (data_start_ > size_ && !tensors_.empty()) c.fail("the tensor data section starts past the end of the file");
    std::vector<const GgufTensorInfo*> by_offset;
    for (const auto& t : tensors_) {
      const uint64_t avail = size_ - data_start_;  // data_start_ <= size_ when there are tensors
      if (t.offset > avail || t.bytes > avail - t.offset)
        c.fail("tensor " + excerpt(t.name) + ": its " + std::to_string(t.bytes) + " bytes at offset " + std::to_string(t.offset) +
               " run past the end of the file");
      by_offset.push_back(&t);
    }
    std::sort(by_offset.begin(), by_offset.end(),
              [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
      if (by_offset[i - 1]->offset + by_offset[i - 1]->bytes > by_offset[i]->offset)
        c.fail("tensors " + excerpt(by_offset[i - 1]->name) + " and " + excerpt(by_offset[i]->name) + " overlap");
    }
  } catch (...) {
    ::munmap(const_cast<uint8_t*>(data_), size_);
    data_ = nullptr;
    throw;
  }
}

GgufFile::~GgufFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

const nlohmann::json& GgufFile::at(const std::string& key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end()) throw IoError(path_ + ": metadata " + excerpt(key) + " is missing");
  return *it;
}

uint32_t GgufFile::type_of(const std::string& key) const {
  for (const auto& [k, t] : types_)
    if (k == key) return t;
  throw IoError(path_ + ": metadata " + excerpt(key) + " is missing");
}

uint64_t GgufFile::get_uint(const std::string& key) const {
  const json& v = at(key);
  if (!v.is_number_integer() || (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0))
    throw IoError(path_ + ": metadata " + excerpt(key) + " is not a non-negative integer");
  return v.get<uint64_t>();
}

double GgufFile::get_float(const std::string& key) const {
  const json& v = at(key);
  if (!v.is_number()) throw IoError(path_ + ": metadata " + excerpt(key) + " is not a number");
  return v.get<double>();
}

std::string GgufFile::get_string(const std::string& key) const {
  const json& v = at(key);
  if (!v.is_string()) throw IoError(path_ + ": metadata " + excerpt(key) + " is not a string");
  return v.get<std::string>();
}

const GgufTensorInfo* GgufFile::find(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

at::Tensor GgufFile::dequantize(const GgufTensorInfo& t) const {
  int64_t n = 1;
  for (int64_t d : t.ne) n *= d;
  at::Tensor out = at::empty(t.shape(), at::TensorOptions().dtype(at::kFloat));
  dequantize_ggml(t.type, data_ + data_start_ + t.offset, t.bytes, n, out.data_ptr<float>(), path_ + ": tensor " + excerpt(t.name));
  return out;
}

at::Tensor GgufFile::dequantize(const std::string& name) const {
  const GgufTensorInfo* t = find(name);
  if (!t) throw IoError(path_ + ": no tensor " + excerpt(name));
  return dequantize(*t);
}

}  // namespace rarlhf
