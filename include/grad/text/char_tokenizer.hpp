#pragma once
/// @file text/char_tokenizer.hpp
/// A character-level tokenizer: one id per Unicode code point of a training text (as in char-level
/// GPTs such as nanoGPT's shakespeare_char), the vocabulary sorted by code point.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/io/file.hpp"
#include "grad/io/json.hpp"
#include "grad/text/utf8.hpp"

namespace grad::text {

/// Character-level tokenizer: id i is the i-th smallest code point of the text it was built from.
class char_tokenizer {
public:
  /// An empty vocabulary (encodes only the empty string).
  char_tokenizer() { index_ascii(); }

  /// The distinct characters of UTF-8 `text`; throws value_error naming the byte offset of invalid UTF-8.
  explicit char_tokenizer(std::string_view text) {
    const std::u32string cps = to_code_points(text, "char_tokenizer");
    chars_.assign(cps.begin(), cps.end());
    std::sort(chars_.begin(), chars_.end());
    chars_.erase(std::unique(chars_.begin(), chars_.end()), chars_.end());
    index_ascii();
  }

  /// A tokenizer over exactly `chars` (any order, no duplicates, valid code points).
  static char_tokenizer from_chars(std::span<const char32_t> chars) {
    char_tokenizer t;
    t.chars_.assign(chars.begin(), chars.end());
    std::sort(t.chars_.begin(), t.chars_.end());
    for (std::size_t i = 0; i < t.chars_.size(); ++i) {
      const char32_t c = t.chars_[i];
      if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        throw value_error("char_tokenizer::from_chars: " + detail::code_point_name(c) +
                          " is not a Unicode scalar value (surrogate or above U+10FFFF)");
      if (i > 0 && t.chars_[i - 1] == c)
        throw value_error("char_tokenizer::from_chars: " + detail::code_point_name(c) + " is listed twice");
    }
    t.index_ascii();
    return t;
  }

  /// The ids of UTF-8 `text`. Throws value_error for invalid UTF-8 (with the byte offset) and for a
  /// character outside the vocabulary (naming it, its code point, and its byte and character position).
  std::vector<std::int64_t> encode(std::string_view text) const {
    check_utf8(text, "char_tokenizer::encode");
    std::vector<std::int64_t> out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
      const auto st = detail::decode_step(text, i);
      const std::int64_t id = find(st.cp);
      if (id < 0)
        unknown(text, i, st.cp, out.size());
      out.push_back(id);
      i += st.length;
    }
    return out;
  }

  /// The UTF-8 text of `ids`; throws value_error for an id outside [0, vocab_size()).
  std::string decode(std::span<const std::int64_t> ids) const {
    std::string out;
    out.reserve(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || static_cast<std::size_t>(ids[i]) >= chars_.size())
        throw value_error("char_tokenizer::decode: id " + std::to_string(ids[i]) + " at position " +
                          std::to_string(i) + " is out of range [0, " + std::to_string(chars_.size()) + ")");
      append_utf8(out, chars_[static_cast<std::size_t>(ids[i])]);
    }
    return out;
  }
  /// decode, braced-list form: decode({0, 5, 2}).
  std::string decode(std::initializer_list<std::int64_t> ids) const {
    return decode(std::span<const std::int64_t>(ids.begin(), ids.size()));
  }

  /// Number of characters, V.
  std::size_t vocab_size() const noexcept { return chars_.size(); }
  /// The vocabulary: code points in increasing order; the index is the id.
  const std::vector<char32_t>& chars() const noexcept { return chars_; }
  /// The id of code point `c`, or -1 when it is not in the vocabulary.
  std::int64_t id_of(char32_t c) const noexcept { return find(c); }

  /// Writes the vocabulary to `path` as JSON, atomically (temporary file + rename); io_error on failure.
  void save(const std::filesystem::path& path) const {
    std::string text;
    for (char32_t c : chars_)
      append_utf8(text, c);
    // `chars` is readable; `code_points` is unambiguous whatever an editor does to the string.
    std::string doc = "{\"format\": \"grad.char_tokenizer\", \"version\": 1, \"vocab_size\": " +
                      std::to_string(chars_.size()) + ",\n \"chars\": " + grad::json::quote(text) +
                      ",\n \"code_points\": [";
    for (std::size_t i = 0; i < chars_.size(); ++i)
      doc += (i ? "," : "") + std::to_string(static_cast<std::uint32_t>(chars_[i]));
    doc += "]}\n";
    grad::io::detail::atomic_write(path, "char_tokenizer::save",
                                   [&](grad::io::detail::file_writer& w) { w.write(doc); });
  }

  /// Reads a file written by save; throws io_error naming the file when it is missing or malformed.
  static char_tokenizer load(const std::filesystem::path& path) {
    using grad::io::detail::file_message;
    static constexpr std::string_view who = "char_tokenizer::load";
    const grad::io::detail::mapped_file file(path, who);
    const auto bytes = file.bytes();
    const auto doc =
        grad::json::parse(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                          std::string(who) + ": '" + path.string() + "'");
    auto fail = [&](const std::string& what) { throw io_error(file_message(who, path, what)); };
    const auto* format = doc.find("format");
    if (!doc.is_object() || !format || !format->is_string() || format->as_string() != "grad.char_tokenizer")
      fail("not a char_tokenizer file (no \"format\": \"grad.char_tokenizer\")");
    const auto* version = doc.find("version");
    if (!version || !version->is_integer() || version->as_int() != 1)
      fail("unsupported version (this build reads version 1)");
    const auto* cps = doc.find("code_points");
    const auto* size = doc.find("vocab_size");
    if (!cps || !cps->is_array() || !size || !size->is_integer())
      fail("needs \"vocab_size\" (an integer) and \"code_points\" (an array)");
    if (size->as_int() < 0 || static_cast<std::size_t>(size->as_int()) != cps->size())
      fail("\"vocab_size\" is " + std::to_string(size->as_int()) + " but \"code_points\" has " +
           std::to_string(cps->size()) + " entries");
    char_tokenizer t;
    for (const auto& v : cps->as_array()) {
      const std::int64_t c = v.is_integer() ? v.as_int() : -1;
      if (c < 0 || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        fail("\"code_points\" entry " + std::to_string(t.chars_.size()) + " is not a Unicode scalar value");
      if (!t.chars_.empty() && static_cast<char32_t>(c) <= t.chars_.back())
        fail("\"code_points\" must be strictly increasing (entry " + std::to_string(t.chars_.size()) + ")");
      t.chars_.push_back(static_cast<char32_t>(c));
    }
    // `chars` is redundant; when present it must agree, or the file was edited inconsistently.
    if (const auto* chars = doc.find("chars")) {
      std::string expect;
      for (char32_t c : t.chars_)
        append_utf8(expect, c);
      if (!chars->is_string() || chars->as_string() != expect)
        fail("\"chars\" does not match \"code_points\"");
    }
    t.index_ascii();
    return t;
  }

private:
  std::int64_t find(char32_t c) const noexcept {
    if (c < 128)
      return ascii_[c];
    const auto it = std::lower_bound(chars_.begin(), chars_.end(), c);
    return it != chars_.end() && *it == c ? it - chars_.begin() : -1;
  }

  void index_ascii() noexcept {
    ascii_.fill(-1);
    for (std::size_t i = 0; i < chars_.size() && chars_[i] < 128; ++i)
      ascii_[chars_[i]] = static_cast<std::int32_t>(i);
  }

  [[noreturn]] void unknown(std::string_view text, std::size_t byte, char32_t c, std::size_t index) const {
    std::string shown;
    if (c >= 0x20 && c != 0x7F && !(c >= 0x80 && c < 0xA0)) // control characters are shown by code only
      shown = "'" + std::string(text.substr(byte, detail::decode_step(text, byte).length)) + "' ";
    throw value_error("char_tokenizer::encode: character " + shown + "(" + detail::code_point_name(c) +
                      ") at byte " + std::to_string(byte) + " (character " + std::to_string(index) +
                      ") is not in the vocabulary of " + std::to_string(chars_.size()) +
                      " characters; build the tokenizer from a text that contains it");
  }

  std::vector<char32_t> chars_;           // (V) sorted code points; the index is the id
  std::array<std::int32_t, 128> ascii_{}; // ASCII code point -> id or -1: the common case without a search
};

} // namespace grad::text
