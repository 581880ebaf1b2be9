#pragma once
/// @file text/utf8.hpp
/// Strict UTF-8 (Unicode Table 3-7 "well-formed byte sequences"): validation with the byte offset and
/// reason of the first error, code-point iteration, encoding, and lossy repair with U+FFFD.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "grad/core/error.hpp"

namespace grad::text {

/// Why a byte sequence is not UTF-8.
enum class utf8_problem : unsigned char {
  none,                 ///< well-formed
  continuation_lead,    ///< a continuation byte (0x80-0xBF) where a character should start
  invalid_byte,         ///< 0xC0, 0xC1 or 0xF5-0xFF, which never appear in UTF-8
  overlong,             ///< a longer encoding than needed (E0 80-9F, F0 80-8F)
  surrogate,            ///< an encoded UTF-16 surrogate U+D800-U+DFFF (ED A0-BF)
  too_large,            ///< a code point above U+10FFFF (F4 90-BF)
  missing_continuation, ///< a multi-byte sequence interrupted by a non-continuation byte
  truncated,            ///< a multi-byte sequence cut off by the end of the text
};

/// The first ill-formed sequence of a text: where it starts and why.
struct utf8_error {
  std::size_t offset = 0;                    ///< byte offset of the sequence's first byte
  utf8_problem problem = utf8_problem::none; ///< what is wrong with it
};

namespace detail {

/// One decoding step: the code point (when ok), the bytes it used, or the problem. On a problem,
/// `length` is the "maximal subpart" (Unicode 3.9, U+FFFD substitution): the bytes one U+FFFD replaces.
struct utf8_step {
  char32_t cp = 0;
  unsigned length = 1;
  utf8_problem problem = utf8_problem::none;
};

inline constexpr bool is_continuation(unsigned char b) noexcept {
  return (b & 0xC0u) == 0x80u;
}

/// Decodes the character starting at s[i] (i < s.size()).
inline utf8_step decode_step(std::string_view s, std::size_t i) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  const std::size_t left = s.size() - i;
  const unsigned char b0 = p[0];
  if (b0 < 0x80)
    return {b0, 1, utf8_problem::none};
  if (is_continuation(b0))
    return {0, 1, utf8_problem::continuation_lead};
  if (b0 < 0xC2 || b0 > 0xF4)
    return {0, 1, utf8_problem::invalid_byte};
  const unsigned need = b0 < 0xE0 ? 2u : b0 < 0xF0 ? 3u : 4u;
  // The second byte's allowed range depends on the lead (Table 3-7); later bytes are any continuation.
  unsigned char lo = 0x80, hi = 0xBF;
  utf8_problem second_problem = utf8_problem::missing_continuation;
  if (b0 == 0xE0) {
    lo = 0xA0;
    second_problem = utf8_problem::overlong;
  } else if (b0 == 0xED) {
    hi = 0x9F;
    second_problem = utf8_problem::surrogate;
  } else if (b0 == 0xF0) {
    lo = 0x90;
    second_problem = utf8_problem::overlong;
  } else if (b0 == 0xF4) {
    hi = 0x8F;
    second_problem = utf8_problem::too_large;
  }
  if (left < 2)
    return {0, 1, utf8_problem::truncated};
  if (p[1] < lo || p[1] > hi)
    return {0, 1, is_continuation(p[1]) ? second_problem : utf8_problem::missing_continuation};
  char32_t cp = b0 & (need == 2 ? 0x1Fu : need == 3 ? 0x0Fu : 0x07u);
  cp = (cp << 6) | (p[1] & 0x3Fu);
  for (unsigned k = 2; k < need; ++k) {
    if (k >= left)
      return {0, k, utf8_problem::truncated};
    if (!is_continuation(p[k]))
      return {0, k, utf8_problem::missing_continuation};
    cp = (cp << 6) | (p[k] & 0x3Fu);
  }
  return {cp, need, utf8_problem::none};
}

/// "U+00E9", "U+1F642".
inline std::string code_point_name(char32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(cp));
  return buf;
}

/// "0xC3".
inline std::string byte_name(unsigned char b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned>(b));
  return buf;
}

} // namespace detail

/// A short English description of a problem ("a truncated multi-byte sequence").
inline std::string_view describe(utf8_problem p) noexcept {
  switch (p) {
  case utf8_problem::none:
    return "no error";
  case utf8_problem::continuation_lead:
    return "a continuation byte without a lead byte";
  case utf8_problem::invalid_byte:
    return "a byte that never occurs in UTF-8";
  case utf8_problem::overlong:
    return "an overlong encoding";
  case utf8_problem::surrogate:
    return "an encoded UTF-16 surrogate (U+D800-U+DFFF)";
  case utf8_problem::too_large:
    return "a code point above U+10FFFF";
  case utf8_problem::missing_continuation:
    return "a multi-byte sequence missing a continuation byte";
  case utf8_problem::truncated:
    return "a multi-byte sequence truncated by the end of the text";
  }
  return "an unknown problem";
}

/// The first ill-formed sequence of `s`, or nullopt when `s` is valid UTF-8.
inline std::optional<utf8_error> find_invalid_utf8(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    // ASCII runs are the common case: skip them a byte at a time without the full decoder.
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const auto st = detail::decode_step(s, i);
    if (st.problem != utf8_problem::none)
      return utf8_error{i, st.problem};
    i += st.length;
  }
  return std::nullopt;
}

/// True when `s` is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
inline bool is_valid_utf8(std::string_view s) noexcept {
  return !find_invalid_utf8(s).has_value();
}

/// Throws value_error when `s` is not UTF-8: "`who`: invalid UTF-8 at byte 7 (0xED 0xA0): an encoded
/// UTF-16 surrogate (U+D800-U+DFFF)".
inline void check_utf8(std::string_view s, std::string_view who) {
  const auto e = find_invalid_utf8(s);
  if (!e)
    return;
  std::string bytes;
  for (std::size_t k = e->offset; k < s.size() && k < e->offset + 4; ++k) {
    if (k > e->offset && !detail::is_continuation(static_cast<unsigned char>(s[k])))
      break;
    bytes += (bytes.empty() ? "" : " ") + detail::byte_name(static_cast<unsigned char>(s[k]));
  }
  throw value_error(std::string(who) + ": invalid UTF-8 at byte " + std::to_string(e->offset) + " (" + bytes +
                    "): " + std::string(describe(e->problem)) +
                    "; the text must be UTF-8 (repair it with grad::text::replace_invalid_utf8)");
}

/// Appends the UTF-8 encoding of `cp` (< 0x110000, not a surrogate) to `out`.
inline void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// `s` with every ill-formed sequence replaced by U+FFFD, one per maximal subpart (the Unicode
/// recommendation, which Python's `bytes.decode("utf-8", errors="replace")` also follows).
inline std::string replace_invalid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const auto st = detail::decode_step(s, i);
    if (st.problem == utf8_problem::none)
      out.append(s.substr(i, st.length));
    else
      out += "\xEF\xBF\xBD"; // U+FFFD REPLACEMENT CHARACTER
    i += st.length;
  }
  return out;
}

/// The code points of valid UTF-8 `s`; throws value_error (naming `who` and the byte offset) otherwise.
inline std::u32string to_code_points(std::string_view s, std::string_view who = "to_code_points") {
  check_utf8(s, who);
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto st = detail::decode_step(s, i);
    out += st.cp;
    i += st.length;
  }
  return out;
}

} // namespace grad::text
