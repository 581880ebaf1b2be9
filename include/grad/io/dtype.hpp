#pragma once
/// @file io/dtype.hpp
/// Element types found in tensor files (safetensors, npy, IDX) and exact conversion to float/double,
/// including IEEE half (F16) and bfloat16 (BF16) decoded bit by bit.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "grad/core/shape.hpp"
#include "grad/core/tensor.hpp"

namespace grad::io {

/// An element type stored in a file; the names follow safetensors (`F32`, `BF16`, `I64`...).
enum class dtype : unsigned char { boolean, u8, i8, i16, u16, f16, bf16, i32, u32, f32, i64, u64, f64 };

/// Bytes per element of `t`.
constexpr std::size_t dtype_size(dtype t) noexcept {
  switch (t) {
  case dtype::boolean:
  case dtype::u8:
  case dtype::i8:
    return 1;
  case dtype::i16:
  case dtype::u16:
  case dtype::f16:
  case dtype::bf16:
    return 2;
  case dtype::i32:
  case dtype::u32:
  case dtype::f32:
    return 4;
  case dtype::i64:
  case dtype::u64:
  case dtype::f64:
    return 8;
  }
  return 0;
}

/// The safetensors spelling of `t` ("F32", "BF16", "BOOL"...).
constexpr std::string_view dtype_name(dtype t) noexcept {
  switch (t) {
  case dtype::boolean:
    return "BOOL";
  case dtype::u8:
    return "U8";
  case dtype::i8:
    return "I8";
  case dtype::i16:
    return "I16";
  case dtype::u16:
    return "U16";
  case dtype::f16:
    return "F16";
  case dtype::bf16:
    return "BF16";
  case dtype::i32:
    return "I32";
  case dtype::u32:
    return "U32";
  case dtype::f32:
    return "F32";
  case dtype::i64:
    return "I64";
  case dtype::u64:
    return "U64";
  case dtype::f64:
    return "F64";
  }
  return "?";
}

/// The dtype spelled `name` in safetensors, or nothing when grad does not know it.
inline std::optional<dtype> dtype_from_name(std::string_view name) noexcept {
  for (int i = 0; i <= static_cast<int>(dtype::f64); ++i)
    if (dtype_name(static_cast<dtype>(i)) == name)
      return static_cast<dtype>(i);
  return std::nullopt;
}

/// The dtype that stores a tensor of T without conversion (F32 for float, F64 for double).
template <element T>
constexpr dtype dtype_of() noexcept {
  return std::same_as<T, float> ? dtype::f32 : dtype::f64;
}

/// Decodes an IEEE 754 binary16 value exactly (subnormals, infinities and NaN payloads included).
inline float half_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  const std::uint32_t mant = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0x1f) { // inf or NaN: keep the payload in the top mantissa bits
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) { // normal: rebias the exponent from 15 to 127
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) { // signed zero
    bits = sign;
  } else { // subnormal: mant * 2^-24, normalised into a float (which has room for it)
    int e = -1;
    std::uint32_t m = mant;
    do {
      ++e;
      m <<= 1;
    } while ((m & 0x400u) == 0);
    bits = sign | (static_cast<std::uint32_t>(112 - e) << 23) | ((m & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(bits);
}

/// Decodes a bfloat16 value exactly: it is the upper half of a float.
inline float bfloat16_to_float(std::uint16_t b) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

namespace detail {

/// Reads an N-byte little-endian unsigned integer from unaligned memory.
template <class U>
inline U load_le(const std::byte* p) noexcept {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) // compilers turn this into one load on little-endian hosts
    v |= static_cast<U>(static_cast<U>(std::to_integer<unsigned char>(p[i])) << (8 * i));
  return v;
}

/// Reads an N-byte big-endian unsigned integer from unaligned memory (IDX files are big-endian).
template <class U>
inline U load_be(const std::byte* p) noexcept {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i)
    v = static_cast<U>((v << 8) | std::to_integer<unsigned char>(p[i]));
  return v;
}

/// Writes `v` as little-endian bytes.
template <class U>
inline void store_le(std::byte* p, U v) noexcept {
  for (std::size_t i = 0; i < sizeof(U); ++i)
    p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xffu);
}

/// a * b, or false when it does not fit in size_t.
inline bool checked_mul(std::size_t a, std::size_t b, std::size_t& out) noexcept {
  if (b != 0 && a > std::numeric_limits<std::size_t>::max() / b)
    return false;
  out = a * b;
  return true;
}

/// Number of elements of `shape`, or nothing when it overflows size_t (a corrupted file).
inline std::optional<std::size_t> checked_numel(const shape_type& shape) noexcept {
  std::size_t n = 1;
  for (auto d : shape)
    if (!checked_mul(n, d, n))
      return std::nullopt;
  return n;
}

/// Number of bytes of `shape` elements of `t`, or nothing on overflow.
inline std::optional<std::size_t> checked_nbytes(const shape_type& shape, dtype t) noexcept {
  auto n = checked_numel(shape);
  std::size_t bytes = 0;
  if (!n || !checked_mul(*n, dtype_size(t), bytes))
    return std::nullopt;
  return bytes;
}

template <class Raw, class T, class Fn>
inline void convert_each(const std::byte* src, T* dst, std::size_t n, Fn&& decode) {
  for (std::size_t i = 0; i < n; ++i)
    dst[i] = static_cast<T>(decode(load_le<Raw>(src + i * sizeof(Raw))));
}

/// Converts `n` little-endian elements of type `t` at `src` (any alignment) into `dst`.
template <element T>
inline void convert_le(const std::byte* src, dtype t, T* dst, std::size_t n) {
  if (n == 0)
    return;
  if (t == dtype_of<T>() && std::endian::native == std::endian::little) {
    std::memcpy(dst, src, n * sizeof(T));
    return;
  }
  switch (t) {
  case dtype::boolean:
    return convert_each<std::uint8_t>(src, dst, n, [](std::uint8_t v) { return v != 0 ? 1 : 0; });
  case dtype::u8:
    return convert_each<std::uint8_t>(src, dst, n, [](std::uint8_t v) { return v; });
  case dtype::i8:
    return convert_each<std::uint8_t>(src, dst, n,
                                      [](std::uint8_t v) { return static_cast<std::int8_t>(v); });
  case dtype::i16:
    return convert_each<std::uint16_t>(src, dst, n,
                                       [](std::uint16_t v) { return static_cast<std::int16_t>(v); });
  case dtype::u16:
    return convert_each<std::uint16_t>(src, dst, n, [](std::uint16_t v) { return v; });
  case dtype::f16:
    return convert_each<std::uint16_t>(src, dst, n, half_to_float);
  case dtype::bf16:
    return convert_each<std::uint16_t>(src, dst, n, bfloat16_to_float);
  case dtype::i32:
    return convert_each<std::uint32_t>(src, dst, n,
                                       [](std::uint32_t v) { return static_cast<std::int32_t>(v); });
  case dtype::u32:
    return convert_each<std::uint32_t>(src, dst, n, [](std::uint32_t v) { return v; });
  case dtype::f32:
    return convert_each<std::uint32_t>(src, dst, n, [](std::uint32_t v) { return std::bit_cast<float>(v); });
  case dtype::i64:
    return convert_each<std::uint64_t>(src, dst, n,
                                       [](std::uint64_t v) { return static_cast<std::int64_t>(v); });
  case dtype::u64:
    return convert_each<std::uint64_t>(src, dst, n, [](std::uint64_t v) { return v; });
  case dtype::f64:
    return convert_each<std::uint64_t>(src, dst, n, [](std::uint64_t v) { return std::bit_cast<double>(v); });
  }
}

/// Appends the little-endian bytes of `n` values of T to `out` (a no-op copy on little-endian hosts).
template <element T, class Sink>
inline void write_le(Sink& out, const T* src, std::size_t n) {
  if constexpr (std::endian::native == std::endian::little) {
    out.write(src, n * sizeof(T));
  } else {
    using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    std::byte buf[sizeof(T)];
    for (std::size_t i = 0; i < n; ++i) {
      store_le<U>(buf, std::bit_cast<U>(src[i]));
      out.write(buf, sizeof(T));
    }
  }
}

} // namespace detail
} // namespace grad::io
