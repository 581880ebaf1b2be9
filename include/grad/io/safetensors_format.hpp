#pragma once
/// @file io/safetensors_format.hpp
/// The safetensors file format (https://github.com/huggingface/safetensors), low level: inspect a
/// header, read every tensor, write raw tensors. Layout: an 8-byte little-endian header length N, N
/// bytes of JSON header (padded with spaces), then the data buffer that the header's data_offsets
/// index into. Every size and offset of a file is checked before it is used.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/core/shape.hpp"
#include "grad/core/tensor.hpp"
#include "grad/io/dtype.hpp"
#include "grad/io/file.hpp"
#include "grad/io/json.hpp"

namespace grad::io {

/// The free-form string -> string metadata of a safetensors file (its `__metadata__`).
using metadata_map = std::map<std::string, std::string>;

/// Largest JSON header accepted, in bytes: far above real models, far below what corruption produces.
inline constexpr std::size_t safetensors_max_header = 100'000'000;

/// Where one tensor lives in a safetensors file.
struct tensor_info {
  dtype type = dtype::f32; ///< element type as stored
  shape_type shape;        ///< shape as stored
  std::size_t begin = 0;   ///< first byte, relative to the start of the data buffer
  std::size_t end = 0;     ///< one past the last byte, relative to the start of the data buffer
};

/// The parsed and validated header of a safetensors file.
struct safetensors_header {
  std::vector<std::pair<std::string, tensor_info>> tensors; ///< in the order of the header
  metadata_map metadata;                                    ///< the `__metadata__` entries
  std::size_t data_offset = 0;                              ///< file offset of the data buffer

  /// The tensor called `name`, or nullptr.
  const tensor_info* find(std::string_view name) const noexcept {
    for (const auto& [n, info] : tensors)
      if (n == name)
        return &info;
    return nullptr;
  }
};

/// One tensor read from a file: its stored dtype and its value converted to T.
template <element T>
struct loaded_tensor {
  dtype type = dtype::f32; ///< dtype in the file (F16, BF16, I64... are converted to T)
  basic_tensor<T> tensor;  ///< the value, shape as stored
};

/// Everything in a safetensors file, converted to T.
template <element T>
struct safetensors_contents {
  std::map<std::string, loaded_tensor<T>> tensors; ///< by name
  metadata_map metadata;                           ///< the `__metadata__` entries
};

/// A tensor to write: a name, a dtype, a shape and its little-endian bytes (not copied).
struct raw_tensor {
  std::string name;                 ///< unique, not `__metadata__`
  dtype type = dtype::f32;          ///< element type of `bytes`
  shape_type shape;                 ///< shape; bytes.size() must be numel * dtype_size
  std::span<const std::byte> bytes; ///< the data, row-major, little-endian
};

namespace detail {

inline std::size_t json_size(const json::value& v, const std::filesystem::path& path, std::string_view who,
                             const std::string& what) {
  if (!v.is_integer() || v.as_int() < 0)
    throw io_error(file_message(who, path, what + " must be a non-negative integer, got " + json::dump(v)));
  return static_cast<std::size_t>(v.as_int());
}

/// Parses and validates the header of a whole safetensors file held in `file`.
inline safetensors_header parse_safetensors_header(std::span<const std::byte> file,
                                                   const std::filesystem::path& path, std::string_view who) {
  auto bad = [&](const std::string& what) { return io_error(file_message(who, path, what)); };
  const auto str = [](std::uint64_t v) { return std::to_string(v); };
  if (file.size() < 8)
    throw bad("truncated: the file has " + str(file.size()) +
              " bytes, but a safetensors file starts with an 8-byte header length");
  const auto n = load_le<std::uint64_t>(file.data());
  if (n > safetensors_max_header)
    throw bad("header length " + str(n) +
              " is larger than the 100 MB limit (corrupted, or not a safetensors file)");
  if (n > file.size() - 8)
    throw bad("truncated: header length " + str(n) + " goes beyond the end of the file (" + str(file.size()) +
              " bytes)");
  if (n == 0 || file[8] != std::byte{'{'})
    throw bad("the header does not start with '{' (not a safetensors file)");

  safetensors_header h;
  h.data_offset = 8 + static_cast<std::size_t>(n);
  const std::size_t buffer = file.size() - h.data_offset;
  const std::string_view text(reinterpret_cast<const char*>(file.data() + 8), static_cast<std::size_t>(n));
  const json::value root = json::parse(text, file_message(who, path, "header"));
  if (!root.is_object())
    throw bad("the header is not a JSON object");

  std::unordered_set<std::string_view> seen;
  for (const auto& [name, v] : root.as_object()) {
    if (!seen.insert(name).second)
      throw bad("the header names '" + name + "' twice");
    if (name == "__metadata__") {
      if (!v.is_object())
        throw bad("__metadata__ must be an object of strings");
      for (const auto& [k, s] : v.as_object()) {
        if (!s.is_string())
          throw bad("__metadata__ value of '" + k + "' must be a string, got " + json::dump(s));
        h.metadata[k] = s.as_string();
      }
      continue;
    }
    const std::string t = "tensor '" + name + "'";
    if (!v.is_object())
      throw bad(t + ": expected an object with dtype, shape and data_offsets");
    const json::value* dt = v.find("dtype");
    const json::value* sh = v.find("shape");
    const json::value* off = v.find("data_offsets");
    if (!dt || !sh || !off)
      throw bad(t + ": missing " + std::string(!dt ? "dtype" : !sh ? "shape" : "data_offsets"));
    if (!dt->is_string())
      throw bad(t + ": dtype must be a string");
    tensor_info info;
    if (auto d = dtype_from_name(dt->as_string()))
      info.type = *d;
    else
      throw bad(t + ": dtype '" + dt->as_string() + "' is not supported (grad reads F64, F32, F16, BF16, " +
                "I64, I32, I16, I8, U64, U32, U16, U8, BOOL)");
    if (!sh->is_array())
      throw bad(t + ": shape must be an array of non-negative integers");
    for (std::size_t i = 0; i < sh->size(); ++i)
      info.shape.push_back(json_size(sh->at(i), path, who, t + ": shape[" + std::to_string(i) + "]"));
    if (!off->is_array() || off->size() != 2)
      throw bad(t + ": data_offsets must be an array [begin, end]");
    info.begin = json_size(off->at(std::size_t{0}), path, who, t + ": data_offsets[0]");
    info.end = json_size(off->at(std::size_t{1}), path, who, t + ": data_offsets[1]");
    const std::string where = "data_offsets [" + str(info.begin) + ", " + str(info.end) + "]";
    const auto bytes = checked_nbytes(info.shape, info.type);
    if (!bytes)
      throw bad(t + ": shape " + to_string(info.shape) + " is too large (its size overflows)");
    if (info.end < info.begin)
      throw bad(t + ": " + where + " end before begin");
    if (info.end - info.begin != *bytes)
      throw bad(t + ": " + where + " hold " + str(info.end - info.begin) + " bytes, but " +
                std::string(dtype_name(info.type)) + " " + to_string(info.shape) + " needs " + str(*bytes));
    if (info.end > buffer)
      throw bad(t + ": " + where + " go beyond the data buffer of " + str(buffer) +
                " bytes (truncated file?)");
    h.tensors.emplace_back(name, std::move(info));
  }

  // The format requires the tensors to tile the buffer exactly: no overlap, no gap, nothing after.
  std::vector<const std::pair<std::string, tensor_info>*> order;
  order.reserve(h.tensors.size());
  for (const auto& e : h.tensors)
    order.push_back(&e);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) {
    return a->second.begin != b->second.begin ? a->second.begin < b->second.begin
                                              : a->second.end < b->second.end;
  });
  std::size_t next = 0;
  const std::string* prev = nullptr;
  for (const auto* e : order) {
    if (e->second.begin < next)
      throw bad("tensors '" + *prev + "' and '" + e->first + "' overlap in the data buffer");
    if (e->second.begin > next)
      throw bad("bytes [" + str(next) + ", " + str(e->second.begin) +
                ") of the data buffer belong to no tensor");
    next = e->second.end;
    prev = &e->first;
  }
  if (next != buffer)
    throw bad("the last " + str(buffer - next) + " bytes of the data buffer belong to no tensor");
  return h;
}

} // namespace detail

/// Reads and validates the header of a safetensors file (names, dtypes, shapes, offsets, metadata).
inline safetensors_header inspect_safetensors(const std::filesystem::path& path) {
  detail::mapped_file f(path, "inspect_safetensors");
  return detail::parse_safetensors_header(f.bytes(), path, "inspect_safetensors");
}

/// Reads every tensor of a safetensors file, converted to T (from F64, F32, F16, BF16 or an integer type).
template <element T = float>
safetensors_contents<T> read_safetensors(const std::filesystem::path& path) {
  detail::mapped_file f(path, "read_safetensors");
  const auto h = detail::parse_safetensors_header(f.bytes(), path, "read_safetensors");
  const std::byte* data = f.bytes().data() + h.data_offset;
  safetensors_contents<T> out;
  out.metadata = h.metadata;
  for (const auto& [name, info] : h.tensors) {
    auto a = grad::detail::empty_array<T>(info.shape);
    detail::convert_le<T>(data + info.begin, info.type, a.data(), a.size());
    out.tensors.emplace(name, loaded_tensor<T>{info.type, basic_tensor<T>(std::move(a))});
  }
  return out;
}

namespace detail {

inline void write_safetensors(const std::filesystem::path& path, std::span<const raw_tensor> tensors,
                              const metadata_map& metadata, std::string_view who) {
  std::unordered_set<std::string_view> names;
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      header += first ? "" : ",";
      first = false;
      header += json::quote(k) + ":" + json::quote(v);
    }
    header += "}";
  }
  std::size_t offset = 0;
  for (const auto& t : tensors) {
    if (t.name == "__metadata__")
      throw value_error(
          detail::file_message(who, path, "'__metadata__' is reserved and cannot name a tensor"));
    if (!names.insert(t.name).second)
      throw value_error(file_message(who, path, "two tensors are named '" + t.name + "'"));
    const auto bytes = checked_nbytes(t.shape, t.type);
    if (!bytes || *bytes != t.bytes.size())
      throw value_error(file_message(who, path,
                                     "tensor '" + t.name + "' has " + std::to_string(t.bytes.size()) +
                                         " bytes, which does not match " + std::string(dtype_name(t.type)) +
                                         " " + to_string(t.shape)));
    header += header.size() > 1 ? "," : "";
    header += json::quote(t.name) + ":{\"dtype\":\"" + std::string(dtype_name(t.type)) + "\",\"shape\":[";
    for (std::size_t i = 0; i < t.shape.size(); ++i)
      header += (i ? "," : "") + std::to_string(t.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + *bytes) + "]}";
    offset += *bytes;
  }
  header += "}";
  // Pad with spaces (allowed by the format) so the data buffer starts 8-byte aligned, as the
  // reference implementation does.
  header.append((8 - header.size() % 8) % 8, ' ');
  if (header.size() > safetensors_max_header)
    throw value_error(file_message(who, path, "the header would exceed the 100 MB limit of readers"));
  atomic_write(path, who, [&](file_writer& w) {
    std::byte len[8];
    store_le<std::uint64_t>(len, header.size());
    w.write(len, 8);
    w.write(header);
    for (const auto& t : tensors)
      w.write(t.bytes.data(), t.bytes.size());
  });
}

} // namespace detail

/// Writes tensors (any dtype, as raw little-endian bytes) and metadata to a safetensors file,
/// atomically. Throws value_error for duplicate or reserved names and sizes that do not match shapes.
inline void write_safetensors(const std::filesystem::path& path, std::span<const raw_tensor> tensors,
                              const metadata_map& metadata = {}) {
  detail::write_safetensors(path, tensors, metadata, "write_safetensors");
}

} // namespace grad::io
