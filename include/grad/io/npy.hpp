#pragma once
/// @file io/npy.hpp
/// Single tensors in NumPy's .npy format
/// (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html): `save_npy(t, "x.npy")` is read
/// by `numpy.load("x.npy")`, and `load_npy<float>` reads what `numpy.save` wrote.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "grad/core/error.hpp"
#include "grad/core/shape.hpp"
#include "grad/core/tensor.hpp"
#include "grad/io/dtype.hpp"
#include "grad/io/file.hpp"

namespace grad::io {

namespace detail {

inline constexpr std::string_view npy_magic = "\x93NUMPY";

/// The dtype of a little-endian (or byte-order-free) NumPy descr such as '<f4' or '|u1'.
inline std::optional<dtype> npy_dtype(std::string_view d) {
  struct entry {
    std::string_view name;
    dtype type;
  };
  static constexpr entry table[] = {{"<f2", dtype::f16}, {"<f4", dtype::f32}, {"<f8", dtype::f64},
                                    {"|i1", dtype::i8},  {"|u1", dtype::u8},  {"|b1", dtype::boolean},
                                    {"<i2", dtype::i16}, {"<u2", dtype::u16}, {"<i4", dtype::i32},
                                    {"<u4", dtype::u32}, {"<i8", dtype::i64}, {"<u8", dtype::u64}};
  for (const auto& e : table)
    if (e.name == d)
      return e.type;
  return std::nullopt;
}

/// The header dict of a .npy file: `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
struct npy_header {
  std::string descr;
  bool fortran_order = false;
  shape_type shape;
};

// Parses the Python literal NumPy writes (single- or double-quoted strings, True/False, a tuple of ints).
class npy_dict_parser {
public:
  npy_dict_parser(std::string_view s, const std::filesystem::path& path) : s_(s), path_(path) {}

  npy_header parse() {
    npy_header h;
    bool has_descr = false, has_order = false, has_shape = false;
    expect('{');
    for (;;) {
      ws();
      if (peek() == '}')
        break;
      const std::string key = string_literal();
      expect(':');
      ws();
      if (key == "descr") {
        if (peek() != '\'' && peek() != '"')
          fail("descr is not a simple type string (structured dtypes are not supported)");
        h.descr = string_literal();
        has_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = boolean();
        has_order = true;
      } else if (key == "shape") {
        h.shape = tuple();
        has_shape = true;
      } else {
        fail("unexpected key '" + key + "' in the header");
      }
      ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      ws();
      if (peek() != '}')
        fail("expected ',' or '}' in the header dict");
    }
    ++i_;
    ws();
    if (i_ != s_.size())
      fail("unexpected text after the header dict");
    if (!has_descr || !has_order || !has_shape)
      fail("the header dict lacks '" +
           std::string(!has_descr   ? "descr"
                       : !has_order ? "fortran_order"
                                    : "shape") +
           "'");
    return h;
  }

private:
  [[noreturn]] void fail(const std::string& what) const {
    throw io_error(file_message("load_npy", path_, what + " (at header byte " + std::to_string(i_) + ")"));
  }
  char peek() const noexcept { return i_ < s_.size() ? s_[i_] : '\0'; }
  void ws() noexcept {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r'))
      ++i_;
  }
  void expect(char c) {
    ws();
    if (peek() != c)
      fail(std::string("expected '") + c + "' in the header dict");
    ++i_;
  }
  std::string string_literal() {
    ws();
    const char q = peek();
    if (q != '\'' && q != '"')
      fail("expected a quoted string in the header dict");
    const std::size_t start = ++i_;
    while (i_ < s_.size() && s_[i_] != q)
      ++i_;
    if (i_ == s_.size())
      fail("unterminated string in the header dict");
    return std::string(s_.substr(start, i_++ - start));
  }
  bool boolean() {
    if (s_.substr(i_, 4) == "True") {
      i_ += 4;
      return true;
    }
    if (s_.substr(i_, 5) == "False") {
      i_ += 5;
      return false;
    }
    fail("fortran_order must be True or False");
  }
  shape_type tuple() {
    shape_type shape;
    expect('(');
    for (;;) {
      ws();
      if (peek() == ')')
        break;
      if (peek() < '0' || peek() > '9')
        fail("shape must be a tuple of non-negative integers");
      std::size_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (!checked_mul(v, 10, v) || v > SIZE_MAX - static_cast<std::size_t>(peek() - '0'))
          fail("a shape dimension is too large");
        v += static_cast<std::size_t>(s_[i_++] - '0');
      }
      if (peek() == 'L') // Python 2 longs, in files written by old NumPy versions
        ++i_;
      shape.push_back(v);
      ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() != ')')
        fail("expected ',' or ')' in the shape tuple");
    }
    ++i_;
    return shape;
  }

  std::string_view s_;
  std::size_t i_ = 0;
  const std::filesystem::path& path_;
};

/// Formats a shape as a Python tuple: `()`, `(5,)`, `(2, 3)`.
inline std::string python_tuple(const shape_type& s) {
  std::string r = "(";
  for (std::size_t i = 0; i < s.size(); ++i)
    r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

} // namespace detail

/// Saves a tensor as a .npy file (`<f4` for float, `<f8` for double; format 1.0, or 2.0 for huge
/// headers), atomically. The data starts 64-byte aligned, as NumPy does.
template <element T>
void save_npy(const basic_tensor<T>& t, const std::filesystem::path& path) {
  if (!t.defined())
    throw value_error(detail::file_message("save_npy", path, "the tensor is undefined"));
  std::string dict = std::string("{'descr': '") + (std::same_as<T, float> ? "<f4" : "<f8") +
                     "', 'fortran_order': False, 'shape': " + detail::python_tuple(t.shape()) + ", }";
  // magic (6) + version (2) + length (2 or 4) + dict + padding + '\n' must be a multiple of 64; format
  // 1.0 stores the length in 16 bits, so larger headers need 2.0.
  auto padded = [&](std::size_t prefix) {
    return dict.size() + 1 + (64 - (prefix + dict.size() + 1) % 64) % 64;
  };
  const bool v2 = padded(10) > 65535;
  dict.append(padded(v2 ? 12 : 10) - dict.size() - 1, ' ');
  dict += '\n';
  detail::atomic_write(path, "save_npy", [&](detail::file_writer& w) {
    w.write(detail::npy_magic);
    const char version[2] = {static_cast<char>(v2 ? 2 : 1), 0};
    w.write(version, 2);
    std::byte len[4];
    if (v2)
      detail::store_le<std::uint32_t>(len, static_cast<std::uint32_t>(dict.size()));
    else
      detail::store_le<std::uint16_t>(len, static_cast<std::uint16_t>(dict.size()));
    w.write(len, v2 ? 4 : 2);
    w.write(dict);
    detail::write_le(w, t.data(), t.numel());
  });
}

/// Loads a .npy file into a tensor of T, converting from <f4, <f8, <f2 or an integer/bool dtype.
/// Fortran-ordered and big-endian files are rejected with a hint on how to convert them in NumPy.
template <element T = float>
basic_tensor<T> load_npy(const std::filesystem::path& path) {
  constexpr std::string_view who = "load_npy";
  detail::mapped_file f(path, who);
  const auto b = f.bytes();
  auto bad = [&](const std::string& what) { return io_error(detail::file_message(who, path, what)); };
  if (b.size() < 10 || std::string_view(reinterpret_cast<const char*>(b.data()), 6) != detail::npy_magic)
    throw bad("not a .npy file (it does not start with \\x93NUMPY)");
  const auto major = std::to_integer<unsigned>(b[6]);
  if (major < 1 || major > 3)
    throw bad("unsupported .npy format version " + std::to_string(major) + "." +
              std::to_string(std::to_integer<unsigned>(b[7])));
  const std::size_t prefix = major == 1 ? 10 : 12;
  if (b.size() < prefix)
    throw bad("truncated: the file ends inside the header");
  const std::size_t hlen = major == 1 ? detail::load_le<std::uint16_t>(b.data() + 8)
                                      : detail::load_le<std::uint32_t>(b.data() + 8);
  if (hlen > b.size() - prefix)
    throw bad("truncated: header length " + std::to_string(hlen) + " goes beyond the end of the file (" +
              std::to_string(b.size()) + " bytes)");
  const std::string_view text(reinterpret_cast<const char*>(b.data() + prefix), hlen);
  const auto h = detail::npy_dict_parser(text, path).parse();
  if (h.fortran_order)
    throw bad("fortran_order is True; save a C-ordered array (numpy.ascontiguousarray(a))");
  if (!h.descr.empty() && h.descr[0] == '>')
    throw bad("big-endian data ('" + h.descr +
              "') is not supported; convert with a.astype(a.dtype.newbyteorder('<'))");
  const auto type = detail::npy_dtype(h.descr);
  if (!type)
    throw bad("dtype '" + h.descr + "' is not supported (use <f4, <f8, <f2, or an integer or bool type)");
  const auto bytes = detail::checked_nbytes(h.shape, *type);
  if (!bytes)
    throw bad("shape " + to_string(h.shape) + " is too large (its size overflows)");
  const std::size_t have = b.size() - prefix - hlen;
  if (have != *bytes)
    throw bad(std::string(have < *bytes ? "truncated" : "corrupted") + ": header says " + h.descr + " " +
              to_string(h.shape) + " = " + std::to_string(*bytes) + " bytes of data, file has " +
              std::to_string(have));
  auto a = grad::detail::empty_array<T>(h.shape);
  detail::convert_le<T>(b.data() + prefix + hlen, *type, a.data(), a.size());
  return basic_tensor<T>(std::move(a));
}

} // namespace grad::io
