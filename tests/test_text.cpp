// Tests of grad/text without the GPT-2 files: UTF-8 validation and repair, GPT-2's pre-tokenization
// (expected pieces written out by hand from the pattern), and char_tokenizer.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "grad/text/text.hpp"

namespace {

using grad::text::utf8_problem;
namespace fs = std::filesystem;

std::string what_of(auto&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

std::vector<std::string> pieces(std::string_view s) {
  std::vector<std::string> out;
  for (auto p : grad::text::gpt2_pretokenize(s))
    out.emplace_back(p);
  return out;
}

// A scratch directory removed at the end of the test.
struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() / ("grad_test_text_" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void write_file(const fs::path& p, std::string_view bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

} // namespace

TEST_CASE("utf8: valid text passes, each kind of invalid sequence is found at its offset") {
  using grad::text::find_invalid_utf8;
  CHECK(grad::text::is_valid_utf8(""));
  CHECK(grad::text::is_valid_utf8("plain ASCII\n"));
  CHECK(grad::text::is_valid_utf8("na\xC3\xAFve caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x99\x82"));
  CHECK(grad::text::is_valid_utf8(std::string_view("\0x", 2))); // U+0000 is a character like any other
  CHECK(grad::text::is_valid_utf8("\xF4\x8F\xBF\xBF"));         // U+10FFFF, the last code point
  CHECK(grad::text::is_valid_utf8("\xED\x9F\xBF\xEE\x80\x80")); // U+D7FF and U+E000 around the surrogates

  struct bad_case {
    std::string text;
    std::size_t offset;
    utf8_problem problem;
  };
  const bad_case cases[] = {
      {"\x80", 0, utf8_problem::continuation_lead},            // lone continuation byte
      {"ab\xBF", 2, utf8_problem::continuation_lead},          // ... after ASCII
      {"ab\xC3", 2, utf8_problem::truncated},                  // truncated 2-byte sequence
      {"x\xE6\x97", 1, utf8_problem::truncated},               // truncated 3-byte sequence
      {"\xF0\x9F\x99", 0, utf8_problem::truncated},            // truncated 4-byte sequence
      {"\xC0\xAF", 0, utf8_problem::invalid_byte},             // overlong '/' (C0/C1 never occur)
      {"\xE0\x80\xAF", 0, utf8_problem::overlong},             // overlong 3-byte '/'
      {"\xF0\x82\x82\xAC", 0, utf8_problem::overlong},         // overlong 4-byte euro sign
      {"ok\xED\xA0\x80", 2, utf8_problem::surrogate},          // U+D800
      {"\xED\xBF\xBF", 0, utf8_problem::surrogate},            // U+DFFF
      {"\xF4\x90\x80\x80", 0, utf8_problem::too_large},        // U+110000
      {"\xF5\x80\x80\x80", 0, utf8_problem::invalid_byte},     // lead byte above F4
      {"\xFF", 0, utf8_problem::invalid_byte},                 //
      {"\xE2\x28\xA1", 0, utf8_problem::missing_continuation}, // interrupted sequence
      {"\xC3\xA9\xC3(", 2, utf8_problem::missing_continuation},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    const auto e = find_invalid_utf8(c.text);
    REQUIRE(e.has_value());
    CHECK(e->offset == c.offset);
    CHECK(e->problem == c.problem);
    const std::string msg = what_of([&] { grad::text::check_utf8(c.text, "who"); });
    CHECK(msg.find("who: invalid UTF-8 at byte " + std::to_string(c.offset)) == 0);
    CHECK(msg.find(std::string(grad::text::describe(c.problem))) != std::string::npos);
  }
}

TEST_CASE("utf8: replace_invalid_utf8 gives one U+FFFD per maximal subpart, as Python's errors='replace'") {
  // Expected values from CPython 3.11: bytes.decode("utf-8", errors="replace").
  const std::string R = "\xEF\xBF\xBD";
  CHECK(grad::text::replace_invalid_utf8("\x80") == R);
  CHECK(grad::text::replace_invalid_utf8("ab\xC3") == "ab" + R);
  CHECK(grad::text::replace_invalid_utf8("\xC0\xAF") == R + R);
  CHECK(grad::text::replace_invalid_utf8("\xE0\x80\xAF") == R + R + R);
  CHECK(grad::text::replace_invalid_utf8("\xF0\x82\x82\xAC") == R + R + R + R);
  CHECK(grad::text::replace_invalid_utf8("\xED\xA0\x80") == R + R + R);
  CHECK(grad::text::replace_invalid_utf8("\xF4\x90\x80\x80") == R + R + R + R);
  CHECK(grad::text::replace_invalid_utf8("\xE2\x28\xA1") == R + "(" + R);
  CHECK(grad::text::replace_invalid_utf8("\xF0\x9F\x99"
                                         "A") == R + "A");
  CHECK(grad::text::replace_invalid_utf8("a\xFF"
                                         "b\xE2\x82") == "a" + R + "b" + R);
  const std::string ok = "caf\xC3\xA9 \xF0\x9F\x99\x82";
  CHECK(grad::text::replace_invalid_utf8(ok) == ok);
}

TEST_CASE("utf8: append_utf8 and to_code_points round trip every scalar value boundary") {
  for (char32_t c : {0x0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xD7FFu, 0xE000u, 0xFFFFu, 0x10000u, 0x10FFFFu}) {
    std::string s;
    grad::text::append_utf8(s, c);
    CHECK(grad::text::is_valid_utf8(s));
    CHECK(grad::text::to_code_points(s) == std::u32string(1, c));
  }
}

TEST_CASE("gpt2_pretokenize: tricky strings split piece by piece as GPT-2's pattern does") {
  using V = std::vector<std::string>;
  CHECK(pieces("Hello world") == V{"Hello", " world"});
  CHECK(pieces("I'm") == V{"I", "'m"});
  CHECK(pieces("they'll") == V{"they", "'ll"});
  CHECK(pieces("we're we've he'd it's don't") ==
        V{"we", "'re", " we", "'ve", " he", "'d", " it", "'s", " don", "'t"});
  CHECK(pieces("don't stop") == V{"don", "'t", " stop"});
  CHECK(pieces("I'M") == V{"I", "'", "M"}); // contractions are lower case only (GPT-2 has no IGNORECASE)
  CHECK(pieces(" 's") == V{" '", "s"});     // a space is not part of a contraction
  // \s+(?!\S): a run of spaces before a word leaves its last space to the word.
  CHECK(pieces("  two spaces") == V{" ", " two", " spaces"});
  CHECK(pieces("x   y") == V{"x", "  ", " y"});
  CHECK(pieces("a\n\nb") == V{"a", "\n", "\n", "b"}); // "\n\n" minus its last; then "\n" alone (\s+)
  CHECK(pieces("a\n b") == V{"a", "\n", " b"});
  CHECK(pieces("end  ") == V{"end", "  "});     // at the end of the text the run is taken whole
  CHECK(pieces("\t\tx") == V{"\t", "\t", "x"}); // only U+0020 attaches to a word
  CHECK(pieces("a\r\n b") == V{"a", "\r\n", " b"});
  CHECK(pieces("123abc") == V{"123", "abc"});
  CHECK(pieces("abc123 456") == V{"abc", "123", " 456"});
  CHECK(pieces("na\xC3\xAFve caf\xC3\xA9") == V{"na\xC3\xAFve", " caf\xC3\xA9"});
  CHECK(pieces("cafe\xCC\x81") == V{"cafe", "\xCC\x81"}); // a combining accent (Mn) is neither L nor N
  CHECK(pieces("\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E") ==
        V{"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"});                                           // 日本語
  CHECK(pieces("\xF0\x9F\x99\x82\xF0\x9F\x99\x82") == V{"\xF0\x9F\x99\x82\xF0\x9F\x99\x82"}); // 🙂🙂
  CHECK(pieces("int main() {\n    return 0;\n}") ==
        V{"int", " main", "()", " {", "\n   ", " return", " 0", ";", "\n", "}"});
  CHECK(pieces("\xC2\xBD \xC2\xB2 \xE2\x85\xAB") ==
        V{"\xC2\xBD", " \xC2\xB2", " \xE2\x85\xAB"}); // ½ ² Ⅻ: No, No, Nl
  // NBSP and U+3000 are \s; U+001C..U+001F are not (str.isspace() says they are; the regex module's \s,
  // which GPT-2 used, does not).
  CHECK(pieces("a\xC2\xA0"
               "b") == V{"a", "\xC2\xA0", "b"});
  CHECK(pieces("x\xE3\x80\x80y") == V{"x", "\xE3\x80\x80", "y"});
  CHECK(pieces("\x1C\x1D x") == V{"\x1C\x1D", " x"});
  CHECK(pieces("").empty());
  CHECK(pieces(" ") == V{" "});
  CHECK(pieces("!!! ...") == V{"!!!", " ..."});
}

TEST_CASE("gpt2_pretokenize: pieces tile the text; invalid UTF-8 is a value_error with the offset") {
  std::mt19937 rng(1234);
  const char* alphabet[] = {" ",
                            "  ",
                            "\n",
                            "\t",
                            "'",
                            "s",
                            "ll",
                            "a",
                            "Z",
                            "7",
                            "!",
                            "\xC2\xA0",
                            "\xC3\xA9",
                            "\xE6\x97\xA5",
                            "\xF0\x9F\x99\x82",
                            "\xCC\x81"};
  for (int t = 0; t < 2000; ++t) {
    std::string s;
    const int n = static_cast<int>(rng() % 24);
    for (int i = 0; i < n; ++i)
      s += alphabet[rng() % std::size(alphabet)];
    std::string joined;
    for (auto p : grad::text::gpt2_pretokenize(s)) {
      CHECK(!p.empty());
      joined += p;
    }
    CHECK(joined == s);
  }
  CHECK(what_of([] { grad::text::gpt2_pretokenize("abc\xF0\x9F"); }).find("invalid UTF-8 at byte 3") !=
        std::string::npos);
  CHECK_THROWS_AS(grad::text::gpt2_pretokenize("\x80"), grad::value_error);
}

TEST_CASE("char_tokenizer: sorted code-point vocabulary, encode/decode round trip") {
  const grad::text::char_tokenizer tok("hello world");
  CHECK(tok.vocab_size() == 8); // ' ' d e h l o r w
  CHECK(tok.chars() == std::vector<char32_t>{U' ', U'd', U'e', U'h', U'l', U'o', U'r', U'w'});
  CHECK(tok.encode("hello") == std::vector<std::int64_t>{3, 2, 4, 4, 5});
  CHECK(tok.decode({7, 5, 6, 4, 1}) == "world");
  CHECK(tok.encode("").empty());

  const std::string text =
      "na\xC3\xAFve caf\xC3\xA9, \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x99\x82!\n\t";
  const grad::text::char_tokenizer t2(text);
  const auto ids = t2.encode(text);
  CHECK(ids.size() == grad::text::to_code_points(text).size()); // one id per character, not per byte
  CHECK(t2.decode(ids) == text);
  CHECK(t2.id_of(U'\U0001F642') == static_cast<std::int64_t>(t2.vocab_size()) - 1); // the largest code point
  CHECK(t2.id_of(U'\t') == 0);
  CHECK(t2.id_of(U'x') == -1);
}

TEST_CASE("char_tokenizer: errors name the character and its position") {
  const grad::text::char_tokenizer tok("caf\xC3\xA9 ok");
  // 'z' is the 6th character, at byte 6 (the e-acute before it takes two bytes).
  const std::string msg = what_of([&] { tok.encode("caf\xC3\xA9 z"); });
  CHECK(msg.find("'z'") != std::string::npos);
  CHECK(msg.find("U+007A") != std::string::npos);
  CHECK(msg.find("at byte 6 (character 5)") != std::string::npos);
  CHECK_THROWS_AS(tok.encode("caf\xC3\xA9 z"), grad::value_error);
  // A multi-byte unknown character is shown whole; a control character by its code only.
  CHECK(what_of([&] { tok.encode("ok\xF0\x9F\x99\x82"); }).find("'\xF0\x9F\x99\x82' (U+1F642) at byte 2") !=
        std::string::npos);
  CHECK(what_of([&] { tok.encode("\x01"); }).find("character (U+0001) at byte 0") != std::string::npos);
  CHECK(what_of([&] { tok.encode("ok\xE9"); }).find("invalid UTF-8 at byte 2") != std::string::npos);
  CHECK_THROWS_AS(grad::text::char_tokenizer("bad \xC3("), grad::value_error);
  CHECK(tok.vocab_size() == 7); // c a f e-acute space o k
  CHECK(what_of([&] {
          tok.decode({0, 7});
        }).find("id 7 at position 1 is out of range [0, 7)") != std::string::npos);
  CHECK_THROWS_AS(tok.decode({-1}), grad::value_error);
  CHECK_THROWS_AS(grad::text::char_tokenizer::from_chars(std::u32string(U"aba")), grad::value_error);
  const char32_t surrogate[] = {0xD800};
  CHECK_THROWS_AS(grad::text::char_tokenizer::from_chars(surrogate), grad::value_error);
}

TEST_CASE(
    "char_tokenizer: save/load round trip, atomic write, malformed files are io_errors naming the file") {
  temp_dir dir;
  const std::string text =
      "First Citizen:\nBefore we proceed any further, hear me speak.\n\xC3\xA9\xF0\x9F\x99\x82\"\\\x01";
  const grad::text::char_tokenizer tok(text);
  const fs::path file = dir.path / "vocab.json";
  tok.save(file);
  const auto back = grad::text::char_tokenizer::load(file);
  CHECK(back.chars() == tok.chars());
  CHECK(back.encode(text) == tok.encode(text));
  CHECK(back.decode(tok.encode(text)) == text);
  tok.save(file); // overwrite in place
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path))
    ++entries;
  CHECK(entries == 1); // no temporary file left behind

  const grad::text::char_tokenizer empty;
  empty.save(dir.path / "empty.json");
  CHECK(grad::text::char_tokenizer::load(dir.path / "empty.json").vocab_size() == 0);

  auto load_error = [&](std::string_view contents) {
    const fs::path bad = dir.path / "bad.json";
    write_file(bad, contents);
    std::string msg;
    try {
      grad::text::char_tokenizer::load(bad);
      msg = "(no exception)";
    } catch (const grad::io_error& e) {
      msg = e.what();
    }
    CHECK(msg.find(bad.string()) != std::string::npos);
    return msg;
  };
  CHECK(load_error("{\"format\": \"grad.char_tokenizer\", \"version\": 1, \"vocab_size\": 2, \"code_po")
            .find("invalid JSON") != std::string::npos);
  CHECK(load_error("[1, 2]").find("not a char_tokenizer file") != std::string::npos);
  CHECK(load_error(R"({"format": "grad.char_tokenizer", "version": 2, "vocab_size": 0, "code_points": []})")
            .find("version") != std::string::npos);
  CHECK(load_error(
            R"({"format": "grad.char_tokenizer", "version": 1, "vocab_size": 3, "code_points": [97, 98]})")
            .find("\"vocab_size\" is 3") != std::string::npos);
  CHECK(load_error(
            R"({"format": "grad.char_tokenizer", "version": 1, "vocab_size": 2, "code_points": [98, 97]})")
            .find("strictly increasing") != std::string::npos);
  CHECK(load_error(
            R"({"format": "grad.char_tokenizer", "version": 1, "vocab_size": 1, "code_points": [55296]})")
            .find("not a Unicode scalar value") != std::string::npos);
  CHECK(load_error(R"({"format": "grad.char_tokenizer", "version": 1, "vocab_size": 1, "code_points": [97],
                      "chars": "b"})")
            .find("does not match") != std::string::npos);
  const fs::path missing = dir.path / "missing.json";
  CHECK(what_of([&] { grad::text::char_tokenizer::load(missing); }).find(missing.string()) !=
        std::string::npos);
  CHECK_THROWS_AS(grad::text::char_tokenizer::load(missing), grad::io_error);
}
