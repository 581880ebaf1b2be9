#pragma once
/// @file text/gpt2_tokenizer.hpp
/// GPT-2's byte-level BPE tokenizer, exactly as openai/gpt-2 src/encoder.py: text -> pre-tokens
/// (pretokenize.hpp) -> bytes -> BPE merges by rank -> ids; decode concatenates the tokens' bytes.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/text/gpt2_vocab.hpp"
#include "grad/text/pretokenize.hpp"
#include "grad/text/utf8.hpp"

namespace grad::text {

/// How encode treats the text "<|endoftext|>".
enum class special_tokens : unsigned char {
  as_text, ///< like any other text (GPT-2's encoder.py; safe for untrusted input)
  allow,   ///< each occurrence becomes the single end-of-text id (eos_token_id())
};

namespace detail {

/// BPE of one pre-token's bytes, appending ids to out. GPT-2's rule: take the adjacent pair with the
/// lowest merge rank, merge all its occurrences left to right (non-overlapping), repeat until no pair
/// has a rank. A heap of (rank, position) candidates over a linked list makes this O(n log n) instead
/// of encoder.py's O(n^2), which matters for long pieces (a megabyte of spaces is one pre-token).
inline void bpe_piece(const gpt2_vocab& v, std::string_view piece, std::vector<std::int64_t>& out) {
  const std::size_t n = piece.size();
  if (n == 1) {
    out.push_back(v.byte_ids[static_cast<unsigned char>(piece[0])]);
    return;
  }
  struct symbol {
    std::int32_t id;   // -1 once merged into its left neighbour
    std::int32_t prev; // index of the previous live symbol, -1 at the start
    std::int32_t next; // index of the next live symbol, -1 at the end
  };
  struct candidate {
    std::int32_t rank, pos, left, right, merged;
    bool operator>(const candidate& o) const noexcept { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<symbol> sym(n);
  for (std::size_t i = 0; i < n; ++i)
    sym[i] = {v.byte_ids[static_cast<unsigned char>(piece[i])], static_cast<std::int32_t>(i) - 1,
              i + 1 < n ? static_cast<std::int32_t>(i + 1) : -1};
  std::priority_queue<candidate, std::vector<candidate>, std::greater<>> heap;
  std::vector<candidate> pending;
  auto consider = [&](std::int32_t pos, std::vector<candidate>& into) {
    const std::int32_t nx = sym[static_cast<std::size_t>(pos)].next;
    if (nx < 0)
      return;
    const std::int32_t a = sym[static_cast<std::size_t>(pos)].id, b = sym[static_cast<std::size_t>(nx)].id;
    if (const merge_result* m = v.merges.find(a, b))
      into.push_back({m->rank, pos, a, b, m->id});
  };
  for (std::size_t i = 0; i + 1 < n; ++i)
    consider(static_cast<std::int32_t>(i), pending);
  for (const auto& c : pending)
    heap.push(c);
  while (!heap.empty()) {
    // One pass of encoder.py: every occurrence of the best pair, in text order (the heap orders equal
    // ranks by position). Pairs created by the pass wait in `pending` until it ends, as in encoder.py.
    const std::int32_t rank = heap.top().rank;
    pending.clear();
    while (!heap.empty() && heap.top().rank == rank) {
      const candidate c = heap.top();
      heap.pop();
      symbol& s = sym[static_cast<std::size_t>(c.pos)];
      // Stale if either side was merged since the candidate was made.
      if (s.id != c.left || s.next < 0 || sym[static_cast<std::size_t>(s.next)].id != c.right)
        continue;
      symbol& right = sym[static_cast<std::size_t>(s.next)];
      s.id = c.merged;
      right.id = -1;
      s.next = right.next;
      if (s.next >= 0)
        sym[static_cast<std::size_t>(s.next)].prev = c.pos;
      if (s.prev >= 0)
        consider(s.prev, pending);
      consider(c.pos, pending);
    }
    for (const auto& c : pending)
      heap.push(c);
  }
  for (std::int32_t i = 0; i >= 0; i = sym[static_cast<std::size_t>(i)].next)
    out.push_back(sym[static_cast<std::size_t>(i)].id);
}

/// Pre-token -> ids, shared by copies of a tokenizer. Bounded: cleared when it reaches max_entries.
struct bpe_cache {
  static constexpr std::size_t max_entries = std::size_t{1} << 18;
  static constexpr std::size_t max_piece_bytes = 256; // longer pieces are rare: not worth the memory
  std::mutex mutex;
  std::unordered_map<std::string, std::vector<std::int64_t>, string_hash, std::equal_to<>> map;
};

} // namespace detail

/// GPT-2's tokenizer (also GPT-3's r50k_base): 50257 tokens, byte-level BPE, "<|endoftext|>" = 50256.
/// A cheap handle: copies share the vocabulary and the cache; encode/decode are safe from many threads.
class gpt2_tokenizer {
public:
  /// Loads `encoder.json` + `vocab.bpe` (or Hugging Face's `vocab.json` + `merges.txt`); throws
  /// io_error naming the file on any problem.
  gpt2_tokenizer(const std::filesystem::path& vocab_json, const std::filesystem::path& merges)
      : vocab_(load(vocab_json, merges)), cache_(std::make_shared<detail::bpe_cache>()) {}

  /// Loads from a directory holding encoder.json + vocab.bpe or vocab.json + merges.txt.
  static gpt2_tokenizer from_directory(const std::filesystem::path& dir) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
      throw io_error(grad::io::detail::file_message("gpt2_tokenizer::from_directory", dir,
                                                    "does not exist or is not a directory"));
    for (const auto& [vocab, merges] : {std::pair{"encoder.json", "vocab.bpe"}, {"vocab.json", "merges.txt"}})
      if (std::filesystem::exists(dir / vocab, ec) && std::filesystem::exists(dir / merges, ec))
        return gpt2_tokenizer(dir / vocab, dir / merges);
    throw io_error(grad::io::detail::file_message("gpt2_tokenizer::from_directory", dir,
                                                  "holds neither encoder.json + vocab.bpe (OpenAI's names) "
                                                  "nor vocab.json + merges.txt (Hugging Face's)"));
  }

  /// The ids of UTF-8 `text`; throws value_error naming the byte offset when `text` is not valid UTF-8.
  std::vector<std::int64_t> encode(std::string_view text,
                                   special_tokens special = special_tokens::as_text) const {
    std::vector<std::int64_t> out;
    encode_to(text, out, special);
    return out;
  }

  /// Appends the ids of `text` to `out` (see encode).
  void encode_to(std::string_view text, std::vector<std::int64_t>& out,
                 special_tokens special = special_tokens::as_text) const {
    check_utf8(text, "gpt2_tokenizer::encode");
    out.reserve(out.size() + text.size() / 4);
    if (special == special_tokens::as_text) {
      encode_ordinary(text, out);
      return;
    }
    static constexpr std::string_view eot = "<|endoftext|>";
    for (std::size_t pos = 0;;) {
      const std::size_t at = text.find(eot, pos);
      encode_ordinary(text.substr(pos, at == std::string_view::npos ? std::string_view::npos : at - pos),
                      out);
      if (at == std::string_view::npos)
        break;
      out.push_back(vocab_->eos_id);
      pos = at + eot.size();
    }
  }

  /// The bytes of the tokens `ids`, concatenated. Every id in range is accepted, so the result may be
  /// invalid UTF-8 (a character split across tokens): see decode_lossy. Throws value_error for an id
  /// outside [0, vocab_size()).
  std::string decode(std::span<const std::int64_t> ids) const {
    std::string out;
    out.reserve(ids.size() * 4);
    for (std::size_t i = 0; i < ids.size(); ++i)
      out += token_bytes_at(ids[i], i, "decode");
    return out;
  }
  /// decode, braced-list form: decode({15496, 995}).
  std::string decode(std::initializer_list<std::int64_t> ids) const {
    return decode(std::span<const std::int64_t>(ids.begin(), ids.size()));
  }

  /// decode with every invalid UTF-8 sequence replaced by U+FFFD, one per maximal subpart: the same
  /// text as encoder.py's `decode` (Python's errors="replace"). Always valid UTF-8.
  std::string decode_lossy(std::span<const std::int64_t> ids) const {
    return replace_invalid_utf8(decode(ids));
  }

  /// The raw bytes of token `id`; throws value_error when out of range.
  const std::string& token_bytes(std::int64_t id) const { return token_bytes_at(id, 0, "token_bytes"); }

  /// The id of the token whose bytes are exactly `bytes`, or -1 when there is none.
  std::int64_t token_id(std::string_view bytes) const {
    const auto it = vocab_->ids.find(bytes);
    return it == vocab_->ids.end() ? -1 : it->second;
  }

  /// The id of "<|endoftext|>" (50256 for GPT-2).
  std::int64_t eos_token_id() const noexcept { return vocab_->eos_id; }
  /// Number of tokens, V (50257 for GPT-2).
  std::size_t vocab_size() const noexcept { return vocab_->tokens.size(); }
  /// Number of BPE merges (50000 for GPT-2).
  std::size_t num_merges() const noexcept { return vocab_->merges.size(); }

private:
  static std::shared_ptr<const detail::gpt2_vocab> load(const std::filesystem::path& vocab_json,
                                                        const std::filesystem::path& merges) {
    auto v = std::make_shared<detail::gpt2_vocab>();
    detail::read_gpt2_encoder(vocab_json, *v);
    detail::read_gpt2_merges(merges, *v);
    return v;
  }

  const std::string& token_bytes_at(std::int64_t id, std::size_t position, std::string_view who) const {
    if (id < 0 || static_cast<std::size_t>(id) >= vocab_->tokens.size())
      throw value_error("gpt2_tokenizer::" + std::string(who) + ": id " + std::to_string(id) +
                        " at position " + std::to_string(position) + " is out of range [0, " +
                        std::to_string(vocab_->tokens.size()) + ")");
    return vocab_->tokens[static_cast<std::size_t>(id)];
  }

  // Valid UTF-8 without special tokens: pre-tokenize, then each piece through the cache or BPE.
  void encode_ordinary(std::string_view text, std::vector<std::int64_t>& out) const {
    detail::for_each_pretoken(text, [&](std::string_view piece) {
      if (piece.size() == 1) { // one byte is one token: no lookup needed
        out.push_back(vocab_->byte_ids[static_cast<unsigned char>(piece[0])]);
        return;
      }
      if (piece.size() > detail::bpe_cache::max_piece_bytes) {
        detail::bpe_piece(*vocab_, piece, out);
        return;
      }
      {
        const std::lock_guard lock(cache_->mutex);
        const auto it = cache_->map.find(piece);
        if (it != cache_->map.end()) {
          out.insert(out.end(), it->second.begin(), it->second.end());
          return;
        }
      }
      const std::size_t first = out.size();
      detail::bpe_piece(*vocab_, piece, out);
      std::vector<std::int64_t> ids(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
      const std::lock_guard lock(cache_->mutex);
      if (cache_->map.size() >= detail::bpe_cache::max_entries)
        cache_->map.clear(); // bounded memory; the common pieces come back quickly
      cache_->map.emplace(std::string(piece), std::move(ids));
    });
  }

  std::shared_ptr<const detail::gpt2_vocab> vocab_;
  std::shared_ptr<detail::bpe_cache> cache_;
};

} // namespace grad::text
