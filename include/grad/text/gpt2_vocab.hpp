#pragma once
/// @file text/gpt2_vocab.hpp
/// Reading GPT-2's byte-level BPE files: `encoder.json` (token -> id) and `vocab.bpe` (the merges, best
/// first), or Hugging Face's `vocab.json` and `merges.txt`, which hold the same data. Every malformed
/// file gives an io_error naming it; nothing is read out of bounds.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/io/file.hpp"
#include "grad/io/json.hpp"
#include "grad/text/utf8.hpp"

namespace grad::text::detail {

/// GPT-2's bytes_to_unicode (openai/gpt-2 src/encoder.py): printable Latin-1 bytes map to themselves and
/// the other 68 bytes to U+0100.. in byte order, so every token is a printable string with no spaces.
inline constexpr std::array<char32_t, 256> bytes_to_unicode = [] {
  std::array<char32_t, 256> m{};
  char32_t next = 256;
  for (unsigned b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    m[b] = printable ? b : next++;
  }
  return m;
}();

/// The inverse of bytes_to_unicode over U+0000..U+01FF (-1: not an image); every image is below U+0144.
inline constexpr std::array<std::int16_t, 512> unicode_to_bytes = [] {
  std::array<std::int16_t, 512> m{};
  for (auto& v : m)
    v = -1;
  for (unsigned b = 0; b < 256; ++b)
    m[bytes_to_unicode[b]] = static_cast<std::int16_t>(b);
  return m;
}();

/// Hash for string keys that also accepts string_view lookups (no temporary std::string per find).
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

/// What a merge of two adjacent tokens gives: its rank (lower merges first) and the merged token's id.
struct merge_result {
  std::int32_t rank;
  std::int32_t id;
};

/// (left id, right id) -> merge_result, open addressing with linear probing. BPE looks up every
/// adjacent pair, so one cache miss per lookup (instead of std::unordered_map's bucket + node) is
/// what makes encoding fast.
class merge_table {
public:
  /// The key of a pair of ids (both >= 0).
  static constexpr std::uint64_t key(std::int32_t a, std::int32_t b) noexcept {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }
  /// Room for n merges without rehashing (load factor <= 2/3).
  void reserve(std::size_t n) {
    std::size_t cap = 16;
    while (cap < n + n / 2)
      cap *= 2;
    if (cap > slots_.size())
      rehash(cap);
  }
  /// Inserts; false (and no change) when the pair is already present.
  bool insert(std::int32_t a, std::int32_t b, merge_result r) {
    if ((size_ + 1) * 3 > slots_.size() * 2)
      rehash(slots_.empty() ? 16 : slots_.size() * 2);
    const std::uint64_t k = key(a, b);
    for (std::size_t i = home(k);; i = (i + 1) & mask_) {
      if (slots_[i].key == k)
        return false;
      if (slots_[i].key == empty) {
        slots_[i] = {k, r};
        ++size_;
        return true;
      }
    }
  }
  /// The merge of (a, b), or nullptr.
  const merge_result* find(std::int32_t a, std::int32_t b) const noexcept {
    if (slots_.empty())
      return nullptr;
    const std::uint64_t k = key(a, b);
    for (std::size_t i = home(k);; i = (i + 1) & mask_) {
      if (slots_[i].key == k)
        return &slots_[i].value;
      if (slots_[i].key == empty)
        return nullptr;
    }
  }
  /// Number of merges.
  std::size_t size() const noexcept { return size_; }
  /// Removes every merge.
  void clear() noexcept {
    slots_.clear();
    size_ = 0;
    mask_ = 0;
  }

private:
  static constexpr std::uint64_t empty = ~std::uint64_t{0}; // never a key: ids are below 2^31
  struct slot {
    std::uint64_t key = empty;
    merge_result value{};
  };
  std::size_t home(std::uint64_t k) const noexcept {
    return static_cast<std::size_t>((k * 0x9E3779B97F4A7C15ull) >> 32) & mask_; // Fibonacci hashing
  }
  void rehash(std::size_t cap) {
    std::vector<slot> old = std::move(slots_);
    slots_.assign(cap, slot{});
    mask_ = cap - 1;
    size_ = 0;
    for (const auto& s : old)
      if (s.key != empty)
        insert(static_cast<std::int32_t>(s.key >> 32), static_cast<std::int32_t>(s.key & 0xFFFFFFFFu),
               s.value);
  }
  std::vector<slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

/// The loaded vocabulary and merges; immutable once built, shared between tokenizer copies.
struct gpt2_vocab {
  std::vector<std::string> tokens;                                                 // id -> raw bytes
  std::unordered_map<std::string, std::int32_t, string_hash, std::equal_to<>> ids; // raw bytes -> id
  std::array<std::int32_t, 256> byte_ids{}; // byte -> id of the one-byte token
  merge_table merges;                       // (left id, right id) -> rank and merged id
  std::int32_t eos_id = -1;
};

inline constexpr std::string_view gpt2_who = "gpt2_tokenizer";

/// The raw bytes of a token written with bytes_to_unicode characters, or the first character that is
/// not one of them (as an error text).
inline bool token_to_bytes(std::string_view token, std::string& bytes, std::string& problem) {
  bytes.clear();
  for (std::size_t i = 0; i < token.size();) {
    const auto st = decode_step(token, i);
    if (st.problem != utf8_problem::none) {
      problem = "invalid UTF-8 at byte " + std::to_string(i) + ": " + std::string(describe(st.problem));
      return false;
    }
    const int b = st.cp < unicode_to_bytes.size() ? unicode_to_bytes[st.cp] : -1;
    if (b < 0) {
      problem = code_point_name(st.cp) + " is not a character of GPT-2's byte-to-unicode mapping";
      return false;
    }
    bytes += static_cast<char>(b);
    i += st.length;
  }
  return true;
}

/// A token for an error message: quoted, and cut when long.
inline std::string quote_token(std::string_view t) {
  return grad::json::quote(t.size() > 40 ? t.substr(0, 40) : t) + (t.size() > 40 ? "..." : "");
}

/// Reads encoder.json / vocab.json into v.tokens, v.ids, v.byte_ids and v.eos_id.
inline void read_gpt2_encoder(const std::filesystem::path& path, gpt2_vocab& v) {
  using grad::io::detail::file_message;
  const grad::io::detail::mapped_file file(path, gpt2_who);
  const auto bytes = file.bytes();
  const std::string source = std::string(gpt2_who) + ": '" + path.string() + "'"; // as file_message
  const auto doc =
      grad::json::parse(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), source);
  auto fail = [&](const std::string& what) { throw io_error(file_message(gpt2_who, path, what)); };
  if (!doc.is_object())
    fail("expected a JSON object mapping tokens to ids");
  const auto& members = doc.as_object();
  const std::size_t n = members.size();
  if (n == 0 || n > (std::size_t{1} << 30))
    fail("the vocabulary has " + std::to_string(n) + " tokens");
  v.tokens.assign(n, {});
  std::vector<bool> seen(n, false);
  v.ids.clear();
  v.ids.reserve(n);
  std::string raw, problem;
  for (const auto& [token, id_value] : members) {
    if (!id_value.is_integer())
      fail("token " + quote_token(token) + " has a non-integer id; ids must be integers");
    const std::int64_t id = id_value.as_int();
    if (id < 0 || static_cast<std::size_t>(id) >= n)
      fail("token " + quote_token(token) + " has id " + std::to_string(id) + ", out of range [0, " +
           std::to_string(n) + ") for a vocabulary of " + std::to_string(n) + " tokens");
    if (seen[static_cast<std::size_t>(id)])
      fail("id " + std::to_string(id) + " is given to two tokens, " +
           quote_token(v.tokens[static_cast<std::size_t>(id)]) + " and " + quote_token(token));
    seen[static_cast<std::size_t>(id)] = true;
    if (!token_to_bytes(token, raw, problem))
      fail("token " + quote_token(token) + ": " + problem);
    if (raw.empty())
      fail("the empty string is not a valid token (id " + std::to_string(id) + ")");
    if (!v.ids.emplace(raw, static_cast<std::int32_t>(id)).second)
      fail("token " + quote_token(token) + " appears twice");
    v.tokens[static_cast<std::size_t>(id)] = raw;
  }
  for (unsigned b = 0; b < 256; ++b) {
    const auto it = v.ids.find(std::string(1, static_cast<char>(b)));
    if (it == v.ids.end()) {
      std::string shown;
      append_utf8(shown, bytes_to_unicode[b]);
      fail("has no token for the byte " + byte_name(static_cast<unsigned char>(b)) + " (written \"" + shown +
           "\"); a byte-level BPE vocabulary needs all 256");
    }
    v.byte_ids[b] = it->second;
  }
  const auto eos = v.ids.find(std::string_view("<|endoftext|>"));
  if (eos == v.ids.end())
    fail("has no \"<|endoftext|>\" token");
  v.eos_id = eos->second;
}

/// Reads vocab.bpe / merges.txt into v.merges (after read_gpt2_encoder). Format: an optional first line
/// "#version: ...", then one merge "left right" per line, best first; empty lines are skipped.
inline void read_gpt2_merges(const std::filesystem::path& path, gpt2_vocab& v) {
  using grad::io::detail::file_message;
  const grad::io::detail::mapped_file file(path, gpt2_who);
  const auto bytes = file.bytes();
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  std::size_t line_no = 0;
  auto fail = [&](const std::string& what) {
    throw io_error(file_message(gpt2_who, path, "line " + std::to_string(line_no) + ": " + what));
  };
  v.merges.clear();
  v.merges.reserve(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
  std::string left_raw, right_raw, problem;
  std::int32_t rank = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos)
      eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') // Windows line endings
      line.remove_suffix(1);
    if (line_no == 1 && line.starts_with("#version"))
      continue;
    // Tokens never contain spaces (bytes_to_unicode maps 0x20 to U+0120), so a space separates them.
    std::vector<std::string_view> parts;
    for (std::size_t i = 0; i < line.size();) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
        ++i;
      const std::size_t start = i;
      while (i < line.size() && line[i] != ' ' && line[i] != '\t')
        ++i;
      if (i > start)
        parts.push_back(line.substr(start, i - start));
    }
    if (parts.empty())
      continue;
    if (parts.size() != 2)
      fail("expected two tokens separated by a space, got " + std::to_string(parts.size()) + ": " +
           quote_token(line));
    if (!token_to_bytes(parts[0], left_raw, problem) || !token_to_bytes(parts[1], right_raw, problem))
      fail(problem);
    const auto find = [&](const std::string& raw, std::string_view shown) {
      const auto it = v.ids.find(raw);
      if (it == v.ids.end())
        fail("the merge " + quote_token(line) + " uses " + quote_token(shown) +
             ", which is not in the vocabulary; is this the merges file that goes with it?");
      return it->second;
    };
    const std::int32_t a = find(left_raw, parts[0]);
    const std::int32_t b = find(right_raw, parts[1]);
    std::string joined(parts[0]);
    joined += parts[1];
    const std::int32_t ab = find(left_raw + right_raw, joined);
    if (rank == std::numeric_limits<std::int32_t>::max())
      fail("too many merges");
    if (!v.merges.insert(a, b, merge_result{rank, ab}))
      fail("the merge " + quote_token(line) + " appears twice");
    ++rank;
  }
}

} // namespace grad::text::detail
