// Tests of grad::text::gpt2_tokenizer against the real GPT-2 files in data/gpt2-tokenizer/.
// Expected ids never come from the code under test: they are encoder.json lookups of pieces written
// out by hand from the BPE rules, or the output of the naive encoder.py algorithm re-implemented below.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "grad/io/json.hpp"
#include "grad/text/text.hpp"

namespace {

namespace fs = std::filesystem;
using ids_t = std::vector<std::int64_t>;

// The repository's data folder, found from this source file (never ../shared): CMake passes the tests
// directory; a hand-built test uses __FILE__ (absolute, or relative to where it was compiled).
fs::path data_dir() {
#ifdef GRAD_TESTS_SOURCE_DIR
  return fs::path(GRAD_TESTS_SOURCE_DIR).parent_path() / "data" / "gpt2-tokenizer";
#else
  return fs::path(__FILE__).parent_path().parent_path() / "data" / "gpt2-tokenizer";
#endif
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "cannot open " << p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, std::string_view bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string what_of(auto&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

// encoder.py's bytes_to_unicode, written again here so the expected values do not depend on the library.
std::string mapped(std::string_view raw) {
  static const std::vector<std::string> table = [] {
    std::vector<int> bs;
    for (int b = '!'; b <= '~'; ++b)
      bs.push_back(b);
    for (int b = 0xA1; b <= 0xAC; ++b)
      bs.push_back(b);
    for (int b = 0xAE; b <= 0xFF; ++b)
      bs.push_back(b);
    std::vector<std::string> t(256);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = std::find(bs.begin(), bs.end(), b) != bs.end();
      t[static_cast<std::size_t>(b)].clear();
      grad::text::append_utf8(t[static_cast<std::size_t>(b)],
                              static_cast<char32_t>(printable ? b : 256 + n++));
    }
    return t;
  }();
  std::string out;
  for (unsigned char c : raw)
    out += table[c];
  return out;
}

// encoder.json as the test reads it: token (mapped form) -> id.
const std::unordered_map<std::string, std::int64_t>& encoder_json() {
  static const auto map = [] {
    std::unordered_map<std::string, std::int64_t> m;
    const auto doc = grad::json::parse(read_file(data_dir() / "encoder.json"));
    for (const auto& [k, v] : doc.as_object())
      m.emplace(k, v.as_int());
    return m;
  }();
  return map;
}

// The ids of hand-written raw pieces: each piece must be one token of encoder.json.
ids_t ids_of(std::initializer_list<std::string_view> raw_pieces) {
  ids_t out;
  for (auto p : raw_pieces) {
    const auto it = encoder_json().find(mapped(p));
    REQUIRE_MESSAGE(it != encoder_json().end(), "not a GPT-2 token: '" << std::string(p) << "'");
    out.push_back(it->second);
  }
  return out;
}

// encoder.py's bpe(), naive and string-based, over vocab.bpe read by the test: the oracle for BPE.
struct naive_bpe {
  std::map<std::pair<std::string, std::string>, int> ranks;
  naive_bpe() {
    std::istringstream in(read_file(data_dir() / "vocab.bpe"));
    std::string line;
    std::getline(in, line); // "#version: 0.2"
    int rank = 0;
    while (std::getline(in, line)) {
      const auto sp = line.find(' ');
      if (sp != std::string::npos)
        ranks.emplace(std::pair{line.substr(0, sp), line.substr(sp + 1)}, rank++);
    }
  }
  ids_t encode_piece(std::string_view raw) const {
    std::vector<std::string> word;
    for (char c : raw)
      word.push_back(mapped(std::string_view(&c, 1)));
    while (word.size() > 1) {
      int best = INT32_MAX;
      std::pair<std::string, std::string> bigram;
      for (std::size_t i = 0; i + 1 < word.size(); ++i) {
        const auto it = ranks.find({word[i], word[i + 1]});
        if (it != ranks.end() && it->second < best) {
          best = it->second;
          bigram = it->first;
        }
      }
      if (best == INT32_MAX)
        break;
      std::vector<std::string> merged;
      for (std::size_t i = 0; i < word.size();) {
        if (i + 1 < word.size() && word[i] == bigram.first && word[i + 1] == bigram.second) {
          merged.push_back(bigram.first + bigram.second);
          i += 2;
        } else {
          merged.push_back(word[i++]);
        }
      }
      word = std::move(merged);
    }
    ids_t out;
    for (const auto& w : word)
      out.push_back(encoder_json().at(w));
    return out;
  }
  ids_t encode(std::string_view text) const {
    ids_t out;
    for (auto piece : grad::text::gpt2_pretokenize(text)) {
      const auto ids = encode_piece(piece);
      out.insert(out.end(), ids.begin(), ids.end());
    }
    return out;
  }
};

const grad::text::gpt2_tokenizer& gpt2() {
  static const auto tok = grad::text::gpt2_tokenizer::from_directory(data_dir());
  return tok;
}

// A random valid UTF-8 string: mostly ASCII and whitespace, with Latin, CJK, emoji and any scalar value.
std::string random_text(std::mt19937& rng, int max_chars) {
  std::string s;
  const int n = static_cast<int>(rng() % static_cast<unsigned>(max_chars + 1));
  for (int i = 0; i < n; ++i) {
    char32_t c;
    switch (rng() % 8) {
    case 0:
    case 1:
      c = 0x20 + rng() % 0x5F;
      break;
    case 2:
      c = U" \n\t\r\u00A0\u3000"[rng() % 6];
      break;
    case 3:
      c = 0xA0 + rng() % 0x250;
      break;
    case 4:
      c = 0x4E00 + rng() % 0x5000;
      break;
    case 5:
      c = 0x1F300 + rng() % 0x300;
      break;
    default:
      do
        c = rng() % 0x110000;
      while (c >= 0xD800 && c <= 0xDFFF);
    }
    grad::text::append_utf8(s, c);
  }
  return s;
}

struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() / ("grad_test_gpt2_" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

} // namespace

TEST_CASE("gpt2: the vocabulary loads with GPT-2's sizes") {
  const auto& tok = gpt2();
  CHECK(tok.vocab_size() == 50257);
  CHECK(tok.num_merges() == 50000);
  CHECK(tok.eos_token_id() == 50256);
  CHECK(tok.token_bytes(50256) == "<|endoftext|>");
  CHECK(tok.token_id(" Hello") == 18435);
  CHECK(tok.token_id("no such token at all") == -1);
}

TEST_CASE("gpt2: known encodings") {
  const auto& tok = gpt2();
  CHECK(tok.encode("Hello world") == ids_t{15496, 995});
  CHECK(tok.encode(" Hello") == ids_t{18435});
  CHECK(tok.encode("Hello world") == ids_of({"Hello", " world"}));
  CHECK(tok.encode("hello") == ids_of({"hello"}));
  CHECK(tok.encode("") == ids_t{});
  CHECK(tok.encode("I'm") == ids_of({"I", "'m"}));
  CHECK(tok.encode("they'll") == ids_of({"they", "'ll"}));
  CHECK(tok.encode("don't stop") == ids_of({"don", "'t", " stop"}));
  CHECK(tok.encode("I'M") == ids_of({"I", "'", "M"}));
  CHECK(tok.encode("  two spaces") == ids_of({" ", " two", " spaces"}));
  CHECK(tok.encode("x   y") == ids_of({"x", " ", " ", " y"})); // piece "  " has no merge: two tokens
  CHECK(tok.encode("a\n\nb") == ids_of({"a", "\n", "\n", "b"}));
  CHECK(tok.encode("\n\n\n") == ids_of({"\n\n", "\n"})); // one piece; the pair merges left to right
  CHECK(tok.encode("123abc") == ids_of({"123", "abc"}));
  CHECK(tok.encode("Hello\tworld\n") == ids_of({"Hello", "\t", "world", "\n"}));
  CHECK(tok.encode("The quick brown fox jumps over the lazy dog.") ==
        ids_of({"The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", "."}));
  CHECK(tok.encode("int main() {\n    return 0;\n}\n") ==
        ids_of({"int", " main", "()", " {", "\n", " ", " ", " ", " return", " 0", ";", "\n", "}", "\n"}));
  // Byte-level pieces: i-diaeresis is C3 AF, e-acute C3 A9; the CJK characters and the emoji split
  // into byte pairs that are tokens of their own.
  CHECK(tok.encode("na\xC3\xAFve caf\xC3\xA9") == ids_of({"na", "\xC3\xAFve", " caf\xC3\xA9"}));
  CHECK(tok.encode("\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E") == // 日本語
        ids_of({"\xE6\x97", "\xA5", "\xE6\x9C", "\xAC", "\xE8\xAA", "\x9E"}));
  CHECK(tok.encode("\xF0\x9F\x99\x82\xF0\x9F\x99\x82") == // 🙂🙂
        ids_of({"\xF0\x9F", "\x99\x82", "\xF0\x9F", "\x99\x82"}));
}

TEST_CASE("gpt2: <|endoftext|> is text unless special tokens are allowed") {
  const auto& tok = gpt2();
  CHECK(tok.encode("<|endoftext|>") == ids_of({"<", "|", "end", "of", "text", "|", ">"}));
  using grad::text::special_tokens;
  CHECK(tok.encode("<|endoftext|>", special_tokens::allow) == ids_t{50256});
  CHECK(tok.encode("a<|endoftext|> b<|endoftext|>", special_tokens::allow) ==
        ids_t{ids_of({"a"})[0], 50256, ids_of({" b"})[0], 50256});
  CHECK(tok.decode({50256}) == "<|endoftext|>");
  ids_t out{1, 2};
  tok.encode_to("Hello", out);
  CHECK(out == ids_t{1, 2, 15496});
}

TEST_CASE("gpt2: BPE agrees with the naive encoder.py algorithm") {
  const naive_bpe ref;
  const auto& tok = gpt2();
  std::mt19937 rng(20240601);
  for (int t = 0; t < 400; ++t) {
    const std::string s = random_text(rng, 40);
    CAPTURE(s);
    CHECK(tok.encode(s) == ref.encode(s));
  }
  // Long single pieces, where the heap-based merge order matters most.
  for (const std::string& s :
       {std::string(3000, ' ') + "x", std::string(2000, 'a'), std::string(1000, '\n'), [] {
          std::string r;
          for (int i = 0; i < 500; ++i)
            r += "ab";
          return r;
        }()}) {
    CHECK(tok.encode(s) == ref.encode(s));
    CHECK(tok.decode(tok.encode(s)) == s);
  }
  // Long random words (one piece each) from a few letters, so that many different merges compete.
  for (int t = 0; t < 60; ++t) {
    std::string s;
    const int n = 20 + static_cast<int>(rng() % 300);
    for (int i = 0; i < n; ++i)
      s += "etaoinshrdlu"[rng() % 12];
    CAPTURE(s);
    CHECK(tok.encode(s) == ref.encode(s));
  }
}

TEST_CASE("gpt2: decode(encode(s)) == s for English, code, whitespace, and random UTF-8") {
  const auto& tok = gpt2();
  const std::string cases[] = {
      "Hello world",
      "  leading and trailing spaces   ",
      "tabs\tand\nnewlines\r\n\n\n\t\t end",
      "for (int i = 0; i < n; ++i) {\n    x[i] += y[i] * 2.5e-3;  // comment\n}\n",
      "def f(x):\n\treturn {'a': [1, 2, 3]}\n",
      "\xF0\x9F\x99\x82\xF0\x9F\x8E\x89 emoji "
      "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7",
      "na\xC3\xAFve caf\xC3\xA9 r\xC3\xA9sum\xC3\xA9 \xC3\x85ngstr\xC3\xB6m",
      "\xE4\xB8\xAD\xE6\x96\x87\xE6\xB5\x8B\xE8\xAF\x95\xEF\xBC\x8C\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
      "mixed: \xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xCE\xB3\xCE\xB5\xCE\xB9\xCE\xAC "
      "\xD8\xB3\xD9\x84\xD8\xA7\xD9\x85 "
      "\xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8\xE0\xA5\x8D\xE0\xA4\xA4\xE0\xA5\x87",
      std::string("nul\0byte", 8),
      "\xC2\xA0\xE3\x80\x80\xE2\x80\xA8\x1C\x1F weird spaces",
      std::string(10000, ' '),
  };
  for (const auto& s : cases) {
    CAPTURE(s);
    const auto ids = tok.encode(s);
    CHECK(tok.decode(ids) == s);
    CHECK(tok.decode_lossy(ids) == s);
  }
  std::mt19937 rng(42);
  for (int t = 0; t < 3000; ++t) {
    const std::string s = random_text(rng, 60);
    CAPTURE(s);
    REQUIRE(tok.decode(tok.encode(s)) == s);
  }
}

TEST_CASE("gpt2: copies share the cache and encode safely from several threads") {
  const auto tok = grad::text::gpt2_tokenizer::from_directory(data_dir());
  std::mt19937 rng(99);
  std::vector<std::string> texts;
  for (int i = 0; i < 4; ++i) {
    std::string s;
    for (int k = 0; k < 200; ++k)
      s += random_text(rng, 30) + " ";
    texts.push_back(s);
  }
  const naive_bpe ref;
  std::vector<ids_t> expected, got(texts.size());
  for (const auto& s : texts)
    expected.push_back(ref.encode(s));
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < texts.size(); ++i)
    threads.emplace_back([&, i, copy = tok] {
      for (int r = 0; r < 3; ++r)
        got[i] = copy.encode(texts[(i + static_cast<std::size_t>(r)) % texts.size()]);
    });
  for (auto& t : threads)
    t.join();
  for (std::size_t i = 0; i < texts.size(); ++i)
    CHECK(got[i] == expected[(i + 2) % texts.size()]);
}

TEST_CASE("gpt2: every token decodes to its bytes; partial characters decode raw or lossy") {
  const auto& tok = gpt2();
  // Each of the 256 bytes is a token of its own and decodes to exactly that byte.
  for (int b = 0; b < 256; ++b) {
    const std::string raw(1, static_cast<char>(b));
    const std::int64_t id = ids_of({raw})[0];
    CHECK(tok.decode({id}) == raw);
    CHECK(tok.token_bytes(id) == raw);
  }
  // All 50257 tokens: decode gives encoder.json's key with the byte mapping undone.
  std::unordered_map<std::string, std::string> unmapped;
  for (int b = 0; b < 256; ++b)
    unmapped[mapped(std::string(1, static_cast<char>(b)))] = std::string(1, static_cast<char>(b));
  std::size_t checked = 0;
  for (const auto& [key, id] : encoder_json()) {
    std::string raw;
    for (std::size_t i = 0; i < key.size();) {
      const std::size_t len = (static_cast<unsigned char>(key[i]) < 0x80) ? 1 : 2; // all images are < U+0800
      raw += unmapped.at(key.substr(i, len));
      i += len;
    }
    checked += tok.decode({id}) == raw;
  }
  CHECK(checked == 50257);
  // The emoji is two tokens: either alone is not UTF-8; decode returns the bytes, decode_lossy U+FFFD.
  const ids_t smile = ids_of({"\xF0\x9F", "\x99\x82"});
  const std::int64_t first[] = {smile[0]};
  CHECK(tok.decode(first) == "\xF0\x9F");
  CHECK(tok.decode_lossy(first) == "\xEF\xBF\xBD");
  CHECK(tok.decode_lossy(smile) == "\xF0\x9F\x99\x82");
  const std::int64_t byte80[] = {ids_of({"\x80"})[0]};
  CHECK(tok.decode_lossy(byte80) == "\xEF\xBF\xBD");
  // Out-of-range ids are errors that say where they are.
  CHECK(what_of([&] {
          tok.decode({15496, 50257});
        }).find("id 50257 at position 1 is out of range [0, 50257)") != std::string::npos);
  CHECK_THROWS_AS(tok.decode({-1}), grad::value_error);
  CHECK_THROWS_AS(tok.token_bytes(50257), grad::value_error);
}

TEST_CASE("gpt2: invalid UTF-8 input is a value_error naming the byte offset") {
  const auto& tok = gpt2();
  const std::pair<std::string, std::size_t> cases[] = {
      {"abc\x80", 3},          // lone continuation byte
      {"ok \xE6\x97", 3},      // truncated sequence
      {"\xC0\xAF", 0},         // overlong
      {"xx\xE0\x80\xAF", 2},   // overlong, 3 bytes
      {"s\xED\xA0\x80", 1},    // surrogate U+D800
      {"\xF4\x90\x80\x80", 0}, // above U+10FFFF
      {"\xFF\xFE", 0},         // never UTF-8
  };
  for (const auto& c : cases) {
    const std::string& s = c.first; // not a structured binding: clang 14 cannot capture those
    CAPTURE(s);
    CHECK_THROWS_AS(tok.encode(s), grad::value_error);
    CHECK(what_of([&] { tok.encode(s); }).find("invalid UTF-8 at byte " + std::to_string(c.second)) !=
          std::string::npos);
  }
}

TEST_CASE("gpt2: Hugging Face file names (vocab.json + merges.txt) load the same tokenizer") {
  temp_dir dir;
  fs::copy_file(data_dir() / "encoder.json", dir.path / "vocab.json");
  std::string merges = read_file(data_dir() / "vocab.bpe");
  // Windows line endings are accepted too.
  std::string crlf;
  for (char c : merges)
    crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  write_file(dir.path / "merges.txt", crlf);
  const auto hf = grad::text::gpt2_tokenizer::from_directory(dir.path);
  const std::string s = "Hugging Face's merges.txt holds the same 50000 merges.\n";
  CHECK(hf.encode(s) == gpt2().encode(s));
  CHECK(hf.vocab_size() == 50257);
}

TEST_CASE("gpt2: a tiny hand-made vocabulary follows encoder.py's merge rules") {
  temp_dir dir;
  // The 256 byte tokens (ids 0..255 in byte order), then "ab", "abc", "aa", then <|endoftext|>.
  std::string json = "{";
  for (int b = 0; b < 256; ++b)
    json += grad::json::quote(mapped(std::string(1, static_cast<char>(b)))) + ": " + std::to_string(b) + ", ";
  json += "\"ab\": 256, \"abc\": 257, \"aa\": 258, \"<|endoftext|>\": 259}";
  write_file(dir.path / "encoder.json", json);
  write_file(dir.path / "vocab.bpe", "#version: 0.2\na b\nab c\na a\n");
  const auto tok = grad::text::gpt2_tokenizer::from_directory(dir.path);
  CHECK(tok.vocab_size() == 260);
  CHECK(tok.encode("abc") == ids_t{257});
  CHECK(tok.encode("aaa") == ids_t{258, 'a'});  // one pass, left to right, no overlap
  CHECK(tok.encode("aaab") == ids_t{258, 256}); // "a b" (rank 0) first, then "a a"
  CHECK(tok.encode("abcab") == ids_t{257, 256});
  CHECK(tok.encode("ba") == ids_t{'b', 'a'});
  CHECK(tok.eos_token_id() == 259);
}

TEST_CASE("gpt2: malformed or missing files are io_errors naming the file") {
  temp_dir dir;
  const std::string good_json = read_file(data_dir() / "encoder.json");
  const std::string good_bpe = read_file(data_dir() / "vocab.bpe");
  auto error_of = [&](std::string_view json, std::string_view bpe) {
    write_file(dir.path / "encoder.json", json);
    write_file(dir.path / "vocab.bpe", bpe);
    try {
      grad::text::gpt2_tokenizer tok(dir.path / "encoder.json", dir.path / "vocab.bpe");
    } catch (const grad::io_error& e) {
      return std::string(e.what());
    } catch (const std::exception& e) {
      return "wrong exception type: " + std::string(e.what());
    }
    return std::string("(no exception)");
  };
  const std::string json_path = (dir.path / "encoder.json").string();
  const std::string bpe_path = (dir.path / "vocab.bpe").string();

  std::string msg = error_of(good_json.substr(0, 5000), good_bpe); // truncated JSON
  CHECK(msg.find(json_path) != std::string::npos);
  CHECK(msg.find("invalid JSON") != std::string::npos);

  msg = error_of("[1, 2, 3]", good_bpe);
  CHECK(msg.find(json_path) != std::string::npos);
  CHECK(msg.find("expected a JSON object") != std::string::npos);

  std::string out_of_range = good_json;
  out_of_range.replace(out_of_range.find("50256"), 5, "70000"); // <|endoftext|>'s id
  msg = error_of(out_of_range, good_bpe);
  CHECK(msg.find(json_path) != std::string::npos);
  CHECK(msg.find("id 70000, out of range [0, 50257)") != std::string::npos);

  std::string duplicate = good_json;
  duplicate.replace(duplicate.find("50256"), 5, "50255");
  CHECK(error_of(duplicate, good_bpe).find("is given to two tokens") != std::string::npos);

  std::string not_int = good_json;
  not_int.replace(not_int.find("50256"), 5, "\"x\"");
  CHECK(error_of(not_int, good_bpe).find("non-integer id") != std::string::npos);

  std::string one_token = good_bpe;
  const std::size_t line3 = one_token.find('\n', one_token.find('\n') + 1) + 1;
  one_token.insert(line3, "\xC4\xA0t\n"); // "Ġt" alone on line 3
  msg = error_of(good_json, one_token);
  CHECK(msg.find(bpe_path) != std::string::npos);
  CHECK(msg.find("line 3: expected two tokens separated by a space, got 1") != std::string::npos);

  msg = error_of(good_json, "#version: 0.2\nzzqqx y\n");
  CHECK(msg.find(bpe_path) != std::string::npos);
  CHECK(msg.find("line 2") != std::string::npos);
  CHECK(msg.find("not in the vocabulary") != std::string::npos);

  CHECK(error_of(good_json, "#version: 0.2\nh e\nh e\n").find("line 3: the merge \"h e\" appears twice") !=
        std::string::npos);

  const fs::path missing = dir.path / "nope" / "encoder.json";
  msg = what_of([&] { grad::text::gpt2_tokenizer tok(missing, dir.path / "vocab.bpe"); });
  CHECK(msg.find(missing.string()) != std::string::npos);
  CHECK_THROWS_AS(grad::text::gpt2_tokenizer(missing, dir.path / "vocab.bpe"), grad::io_error);
  CHECK_THROWS_AS(grad::text::gpt2_tokenizer(dir.path / "encoder.json", dir.path / "missing.bpe"),
                  grad::io_error);

  temp_dir empty;
  msg = what_of([&] { grad::text::gpt2_tokenizer::from_directory(empty.path); });
  CHECK(msg.find(empty.path.string()) != std::string::npos);
  CHECK(msg.find("neither encoder.json + vocab.bpe") != std::string::npos);
  CHECK_THROWS_AS(grad::text::gpt2_tokenizer::from_directory(empty.path / "absent"), grad::io_error);
}

TEST_CASE("gpt2: encode speed (printed, not asserted)") {
  // A few hundred KB of English: the licence texts Debian ships, when present.
  std::string text;
  const fs::path licences = "/usr/share/common-licenses";
  std::error_code ec;
  if (fs::is_directory(licences, ec)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(licences, ec))
      if (e.is_regular_file() && !e.is_symlink())
        files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files)
      text += read_file(f);
  }
  if (text.size() < 100000) { // elsewhere: a synthetic stand-in
    std::mt19937 rng(3);
    const char* words[] = {"the ",      "program ",   "license ", "of ",     "and ",  "software ",
                           "to ",       "any ",       "you ",     "is ",     "free ", "distribute, ",
                           "modify.\n", "copyright ", "GNU ",     "General "};
    while (text.size() < 300000)
      text += words[rng() % std::size(words)];
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto tok = grad::text::gpt2_tokenizer::from_directory(data_dir()); // fresh: an empty cache
  const auto t1 = std::chrono::steady_clock::now();
  const auto ids = tok.encode(text);
  const auto t2 = std::chrono::steady_clock::now();
  const auto again = tok.encode(text);
  const auto t3 = std::chrono::steady_clock::now();
  CHECK(ids == again);
  CHECK(tok.decode(ids) == text);
  const auto sec = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  MESSAGE("gpt2_tokenizer: load " << sec(t0, t1) * 1e3 << " ms; encode " << text.size() / 1024 << " KB -> "
                                  << ids.size() << " tokens: cold cache " << ids.size() / sec(t1, t2) / 1e6
                                  << " M tokens/s (" << text.size() / sec(t1, t2) / 1e6 << " MB/s), warm "
                                  << ids.size() / sec(t2, t3) / 1e6 << " M tokens/s ("
                                  << text.size() / sec(t2, t3) / 1e6 << " MB/s)");
}

// The samples of docs/tokenizers.md, verbatim between "// --- doc" and "// --- end"; change both together.
TEST_CASE("docs/tokenizers.md") {
  temp_dir dir_for_files;
  const fs::path old_cwd = fs::current_path();
  fs::current_path(dir_for_files.path); // the sample writes chars.json into the current directory
  {
    // --- doc: char_tokenizer
    grad::text::char_tokenizer chars("hello world");       // vocabulary " dehlorw": 8 characters
    std::vector<std::int64_t> ids = chars.encode("hello"); // {3, 2, 4, 4, 5}
    std::string text = chars.decode(ids);                  // "hello"
    chars.save("chars.json");                              // written atomically
    auto same = grad::text::char_tokenizer::load("chars.json");
    // --- end
    CHECK(chars.vocab_size() == 8);
    CHECK(ids == ids_t{3, 2, 4, 4, 5});
    CHECK(text == "hello");
    CHECK(same.chars() == chars.chars());
  }
  fs::current_path(old_cwd);
  {
    const fs::path dir = data_dir();
    // --- doc: gpt2_tokenizer
    auto gpt2 = grad::text::gpt2_tokenizer::from_directory(dir); // dir: e.g. grad's data/gpt2-tokenizer
    std::vector<std::int64_t> ids = gpt2.encode("Hello world");  // {15496, 995}
    std::string text = gpt2.decode(ids);                         // "Hello world"
    auto with_eot = gpt2.encode("a<|endoftext|>", grad::text::special_tokens::allow); // {64, 50256}
    // --- end
    CHECK(ids == ids_t{15496, 995});
    CHECK(text == "Hello world");
    CHECK(with_eot == ids_t{64, 50256});
  }
  // The pieces quoted in the pre-tokenization section.
  using V = std::vector<std::string_view>;
  CHECK(grad::text::gpt2_pretokenize("{\n    return") == V{"{", "\n   ", " return"});
  CHECK(grad::text::gpt2_pretokenize("cafe\xCC\x81") == V{"cafe", "\xCC\x81"});
  const std::string bad = "abc\x80";
  CHECK(
      what_of([&] { gpt2().encode(bad); }) ==
      "gpt2_tokenizer::encode: invalid UTF-8 at byte 3 (0x80): a continuation byte without a lead byte; the "
      "text must be UTF-8 (repair it with grad::text::replace_invalid_utf8)");
}
