#pragma once
/// @file text/pretokenize.hpp
/// GPT-2's pre-tokenization, written by hand (std::regex has no \p{L}): text is split into pieces that
/// BPE then encodes one at a time. The pattern, from openai/gpt-2 src/encoder.py:
///   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
/// with the character classes of unicode_tables.hpp (\s = Unicode White_Space, as in Python's `regex`).

#include <array>
#include <cstddef>
#include <string_view>
#include <vector>

#include "grad/text/unicode_tables.hpp"
#include "grad/text/utf8.hpp"

namespace grad::text {

namespace detail {

/// The class of any code point by binary search in the generated range table.
constexpr char_class lookup_class(char32_t cp) noexcept {
  // The last range start <= cp: search for the first key > (cp << 2 | 3), then step back.
  const std::uint32_t key = (static_cast<std::uint32_t>(cp) << 2) | 3u;
  std::size_t lo = 0, hi = std::size(char_class_starts);
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (char_class_starts[mid] <= key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return static_cast<char_class>(char_class_starts[lo - 1] & 3u); // lo >= 1: the table starts at U+0000
}

// Latin-1 (ASCII and the 2-byte range start) is most of English and code: a direct lookup for it.
inline constexpr auto latin1_classes = [] {
  std::array<char_class, 256> a{};
  for (char32_t c = 0; c < 256; ++c)
    a[c] = lookup_class(c);
  return a;
}();

/// The pre-tokenizer class of a code point.
inline char_class classify(char32_t cp) noexcept {
  return cp < 256 ? latin1_classes[cp] : lookup_class(cp);
}

/// Class and byte length of the character at s[i] (s valid UTF-8, i < s.size()).
struct class_step {
  char_class cls;
  unsigned length;
};
inline class_step class_at(std::string_view s, std::size_t i) noexcept {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80)
    return {latin1_classes[b], 1};
  const auto st = decode_step(s, i);
  return {classify(st.cp), st.length};
}

/// End of the run of characters of class `cls` starting at byte i.
inline std::size_t run_end(std::string_view s, std::size_t i, char_class cls) noexcept {
  while (i < s.size()) {
    const auto st = class_at(s, i);
    if (st.cls != cls)
      break;
    i += st.length;
  }
  return i;
}

/// Length of a contraction ('s 't 're 've 'm 'll 'd, lower case only, as GPT-2) at s[i], or 0.
inline std::size_t contraction_at(std::string_view s, std::size_t i) noexcept {
  if (s[i] != '\'' || i + 1 >= s.size())
    return 0;
  const char a = s[i + 1];
  if (a == 's' || a == 't' || a == 'm' || a == 'd')
    return 2;
  if (i + 2 < s.size()) {
    const char b = s[i + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
      return 3;
  }
  return 0;
}

/// Calls f(piece) for each pre-token of valid UTF-8 `s`, in order; the pieces tile `s` exactly.
template <class F>
void for_each_pretoken(std::string_view s, F&& f) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    // The alternatives are tried in the pattern's order; the first that matches at i wins.
    if (const std::size_t c = contraction_at(s, i)) {
      f(s.substr(i, c));
      i += c;
      continue;
    }
    const auto here = class_at(s, i);
    // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional U+0020 then a run of one class.
    if (s[i] == ' ' && i + 1 < n) {
      const auto next = class_at(s, i + 1);
      if (next.cls != char_class::space) {
        const std::size_t end = run_end(s, i + 1 + next.length, next.cls);
        f(s.substr(i, end - i));
        i = end;
        continue;
      }
    }
    if (here.cls != char_class::space) {
      const std::size_t end = run_end(s, i + here.length, here.cls);
      f(s.substr(i, end - i));
      i = end;
      continue;
    }
    // A whitespace run [i, end). "\s+(?!\S)": at the end of the text it is taken whole; before a
    // non-space character, backtracking gives the run minus its last character, which is left to
    // start the next piece (so " word" keeps its space). A run of one character before a non-space
    // fails that alternative and falls to "\s+", which takes it alone.
    std::size_t end = i + here.length, last = i;
    while (end < n) {
      const auto st = class_at(s, end);
      if (st.cls != char_class::space)
        break;
      last = end;
      end += st.length;
    }
    const std::size_t stop = (end == n || last == i) ? end : last;
    f(s.substr(i, stop - i));
    i = stop;
  }
}

} // namespace detail

/// GPT-2's pre-tokens of `text` (views into it, in order, concatenating to `text`). Throws value_error
/// naming the byte offset when `text` is not valid UTF-8.
inline std::vector<std::string_view> gpt2_pretokenize(std::string_view text) {
  check_utf8(text, "gpt2_pretokenize");
  std::vector<std::string_view> out;
  detail::for_each_pretoken(text, [&](std::string_view piece) { out.push_back(piece); });
  return out;
}

} // namespace grad::text
