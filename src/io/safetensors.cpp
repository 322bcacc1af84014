// safetensors reader/writer: see include/rarlhf/io/safetensors.h. The header is validated in full
// (length vs file size, JSON, dtype, shape x itemsize == byte length, offsets in bounds, tensors
// covering the data region contiguously without overlap, no duplicate names) before any tensor is made.
#include "rarlhf/io/safetensors.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"

namespace rarlhf {
namespace {

// Headers above this are refused as corrupt (the format's reference implementation uses 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  size_t size;
};
const DtypeInfo kDtypes[] = {
    {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2},  {"BF16", at::kBFloat16, 2},
    {"I64", at::kLong, 8},   {"I32", at::kInt, 4},   {"I16", at::kShort, 2}, {"I8", at::kChar, 1},
    {"U8", at::kByte, 1},    {"BOOL", at::kBool, 1},
};

const DtypeInfo* dtype_by_name(const std::string& s) {
  for (const auto& d : kDtypes)
    if (s == d.name) return &d;
  return nullptr;
}
const DtypeInfo* dtype_by_type(at::ScalarType t) {
  for (const auto& d : kDtypes)
    if (t == d.type) return &d;
  return nullptr;
}

// A read-only view of the file, shared by every tensor made from it.
struct Mapping {
  void* addr = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (addr != MAP_FAILED) ::munmap(addr, size);
  }
};

struct Entry {
  std::string name;
  const DtypeInfo* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

struct Parsed {
  std::shared_ptr<Mapping> map;
  const uint8_t* data = nullptr;  // start of the data region
  std::vector<Entry> entries;
  std::map<std::string, std::string> metadata;
};

Parsed parse_file(const std::string& path) {
  auto fail = [&](const std::string& what) -> IoError {
    return IoError(path + ": " + what + "; the safetensors file is corrupt or truncated, re-download or re-save it");
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(path + ": cannot open (" + std::strerror(errno) + "); check the path");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IoError(path + ": not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    throw fail("file is " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  }
  Parsed p;
  p.map = std::make_shared<Mapping>();
  // MAP_PRIVATE + PROT_WRITE: copy-on-write, so a caller writing into a loaded tensor never touches the file.
  p.map->addr = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p.map->addr == MAP_FAILED) throw IoError(path + ": mmap failed (" + std::strerror(errno) + ")");
  p.map->size = file_size;
  const auto* bytes = static_cast<const uint8_t*>(p.map->addr);

  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];  // little-endian u64
  if (n > kMaxHeaderBytes || n > file_size - 8) {
    throw fail("header length " + std::to_string(n) + " exceeds the file size " + std::to_string(file_size));
  }
  const uint64_t data_size = file_size - 8 - n;
  p.data = bytes + 8 + n;

  // Duplicate keys are legal JSON but ambiguous here: catch them while parsing (nlohmann keeps the last).
  std::set<std::string> seen;
  std::string duplicate;
  auto cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    if (depth == 1 && ev == nlohmann::json::parse_event_t::key) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes + 8, bytes + 8 + n, cb);
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!duplicate.empty()) throw fail("tensor '" + duplicate + "' appears twice in the header");
  if (!header.is_object()) throw fail("header is not a JSON object");

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) throw fail("__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) throw fail("__metadata__." + m.key() + " is not a string");
        p.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "': ";
    if (!v.is_object()) throw fail(where + "entry is not an object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) throw fail(where + "missing string 'dtype'");
    Entry e;
    e.name = name;
    e.dtype = dtype_by_name(v["dtype"].get<std::string>());
    if (!e.dtype) {
      throw fail(where + "unsupported dtype '" + v["dtype"].get<std::string>() +
                 "' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
    }
    if (!v.contains("shape") || !v["shape"].is_array()) throw fail(where + "missing 'shape' array");
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) throw fail(where + "shape holds a non-integer or negative dimension");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > (1ull << 48) || (dim != 0 && numel > (1ull << 48) / dim)) throw fail(where + "shape is too large");
      numel *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& off = v.contains("data_offsets") ? v["data_offsets"] : nlohmann::json();
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
      throw fail(where + "'data_offsets' must be [begin, end] with non-negative integers");
    }
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    if (e.begin > e.end || e.end > data_size) {
      throw fail(where + "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                 "] outside the data region of " + std::to_string(data_size) + " bytes");
    }
    if (numel * e.dtype->size != e.end - e.begin) {
      throw fail(where + "shape x dtype size = " + std::to_string(numel * e.dtype->size) +
                 " bytes but data_offsets span " + std::to_string(e.end - e.begin));
    }
    p.entries.push_back(std::move(e));
  }

  // The tensors must tile the data region exactly: no gaps, no overlaps, nothing trailing.
  std::vector<const Entry*> order;
  for (const auto& e : p.entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t pos = 0;
  for (const Entry* e : order) {
    if (e->begin != pos) {
      throw fail("tensor '" + e->name + "': data starts at byte " + std::to_string(e->begin) + " but the previous " +
                 "tensor ends at " + std::to_string(pos) + (e->begin < pos ? " (overlap)" : " (gap)"));
    }
    pos = e->end;
  }
  if (pos != data_size) {
    throw fail("tensors cover " + std::to_string(pos) + " of " + std::to_string(data_size) + " data bytes");
  }
  return p;
}

}  // namespace

TensorMap load_safetensors(const std::string& path) {
  Parsed p = parse_file(path);
  TensorMap out;
  for (const auto& e : p.entries) {
    const uint8_t* src = p.data + e.begin;
    auto opts = at::TensorOptions().dtype(e.dtype->type);
    at::Tensor t;
    if (reinterpret_cast<uintptr_t>(src) % e.dtype->size == 0 && e.end > e.begin) {
      // Zero-copy: the tensor keeps the mapping alive through its deleter.
      auto keep = p.map;
      t = at::from_blob(const_cast<uint8_t*>(src), e.shape, [keep](void*) mutable { keep.reset(); }, opts);
    } else {
      t = at::empty(e.shape, opts);
      if (e.end > e.begin) std::memcpy(t.data_ptr(), src, e.end - e.begin);
    }
    out.emplace(e.name, std::move(t));
  }
  return out;
}

std::map<std::string, std::string> load_safetensors_metadata(const std::string& path) {
  return parse_file(path).metadata;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  std::vector<at::Tensor> cpu;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__" || !names.insert(name).second) {
      throw IoError(path + ": tensor name '" + name + "' is reserved or repeated; tensor names must be unique");
    }
    if (!t.defined()) throw IoError(path + ": tensor '" + name + "' is undefined");
    const DtypeInfo* d = dtype_by_type(t.scalar_type());
    if (!d) throw IoError(path + ": tensor '" + name + "': dtype " + std::string(c10::toString(t.scalar_type())) +
                          " cannot be stored in safetensors");
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(c.numel()) * d->size;
    header[name] = {{"dtype", d->name}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    cpu.push_back(std::move(c));
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // data region starts 8-byte aligned
  write_file_atomic(path, [&](std::ostream& os) {
    uint8_t len[8];
    uint64_t n = h.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
    os.write(reinterpret_cast<const char*>(len), 8);
    os.write(h.data(), static_cast<std::streamsize>(h.size()));
    for (const auto& c : cpu) {
      os.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.numel() * c.element_size()));
    }
  });
}

TensorMap load_hf_weights(const std::string& dir, std::string* source, const std::string& bin_hint,
                          const std::string& missing_hint) {
  const std::string single = dir + "/model.safetensors";
  if (file_exists(single)) {
    if (source) *source = single;
    return load_safetensors(single);
  }
  const std::string index = dir + "/model.safetensors.index.json";
  if (file_exists(index)) {
    if (source) *source = index;
    nlohmann::json idx;
    try {
      idx = nlohmann::json::parse(read_file(index));
    } catch (const nlohmann::json::exception& e) {
      throw IoError(index + ": not valid JSON (" + std::string(e.what()) + ")");
    }
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object() ||
        idx["weight_map"].empty()) {
      throw IoError(index + ": missing or empty weight_map");
    }
    std::set<std::string> shards;
    for (const auto& [tensor, file] : idx["weight_map"].items()) {
      if (!file.is_string() || file.get<std::string>().empty() || file.get<std::string>().find('/') != std::string::npos) {
        throw IoError(index + ": weight_map['" + tensor + "'] must name a shard file in " + dir);
      }
      shards.insert(file.get<std::string>());
    }
    TensorMap tensors;
    for (const auto& shard : shards) {
      for (auto& [k, v] : load_safetensors(dir + "/" + shard)) {
        if (!tensors.emplace(k, v).second) throw IoError(dir + "/" + shard + ": tensor '" + k + "' is also in another shard");
      }
    }
    return tensors;
  }
  if (file_exists(dir + "/pytorch_model.bin")) {
    throw IoError(dir + ": has only pytorch_model.bin (a pickle), which rarlhf does not read; " + bin_hint);
  }
  throw IoError(dir + ": no model.safetensors; " + missing_hint);
}

}  // namespace rarlhf
