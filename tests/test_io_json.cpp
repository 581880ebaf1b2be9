// Tests of grad/io/json.hpp: the strict JSON parser used for safetensors headers, config.json and
// tokenizer vocabularies.

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

#include "grad/io/json.hpp"

namespace json = grad::json;

namespace {
// The io_error message of parsing `text`, or "" when it parses.
std::string parse_error(std::string_view text) {
  try {
    (void)json::parse(text, "test.json");
  } catch (const grad::io_error& e) {
    return e.what();
  }
  return "";
}
} // namespace

TEST_CASE("parses every kind of value") {
  const auto v = json::parse(R"( {"a": [1, -2, 3.5, 1e3, -0.25E-2], "b": {"c": true, "d": false, "e": null},
                                   "s": "x", "empty": {}, "none": []} )");
  REQUIRE(v.is_object());
  CHECK(v.size() == 5);
  const auto& a = v.at("a");
  CHECK(a.size() == 5);
  CHECK(a.at(0).is_integer());
  CHECK(a.at(0).as_int() == 1);
  CHECK(a.at(1).as_int() == -2);
  CHECK(a.at(2).as_double() == 3.5);
  CHECK_FALSE(a.at(3).is_integer()); // 1e3 has an exponent: a number, not an integer
  CHECK(a.at(3).as_double() == 1000.0);
  CHECK(a.at(4).as_double() == -0.0025);
  CHECK(v.at("b").at("c").as_bool());
  CHECK_FALSE(v.at("b").at("d").as_bool());
  CHECK(v.at("b").at("e").is_null());
  CHECK(v.at("s").as_string() == "x");
  CHECK(v.at("empty").is_object());
  CHECK(v.at("none").is_array());
  CHECK(v.find("missing") == nullptr);
  // Members keep file order.
  CHECK(v.as_object()[0].first == "a");
  CHECK(v.as_object()[4].first == "none");
}

TEST_CASE("integers: exact int64, and doubles beyond") {
  CHECK(json::parse("9223372036854775807").as_int() == INT64_MAX);
  CHECK(json::parse("-9223372036854775808").as_int() == INT64_MIN);
  const auto big = json::parse("9223372036854775808");
  CHECK_FALSE(big.is_integer());
  CHECK(big.as_double() == 9223372036854775808.0);
  CHECK(json::parse("0").as_int() == 0);
  CHECK(json::parse("-0").as_int() == 0);
}

TEST_CASE("string escapes, \\u escapes, surrogate pairs and raw UTF-8") {
  CHECK(json::parse(R"("a\"b\\c\/d\b\f\n\r\t")").as_string() == "a\"b\\c/d\b\f\n\r\t");
  CHECK(json::parse(R"("\u0041\u00e9\u20AC")").as_string() == "A\xc3\xa9\xe2\x82\xac"); // A é €
  CHECK(json::parse(R"("\u0120the")").as_string() == "\xc4\xa0the");                    // GPT-2's Ġ
  CHECK(json::parse(R"("\ud83d\ude00")").as_string() == "\xf0\x9f\x98\x80");            // U+1F600
  CHECK(json::parse("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"").as_string() ==
        "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  CHECK(json::parse(R"("\u0000")").as_string() == std::string(1, '\0'));
}

TEST_CASE("errors name the source and the byte offset") {
  const std::string e = parse_error(R"({"a": 1,})");
  CHECK(e.find("test.json") != std::string::npos);
  CHECK(e.find("at byte 8") != std::string::npos);
  CHECK(e.find("expected a string key") != std::string::npos);

  CHECK(parse_error("").find("unexpected end of input") != std::string::npos);
  CHECK(parse_error("[1, 2").find("expected ',' or ']'") != std::string::npos);
  CHECK(parse_error(R"({"a" 1})").find("expected ':'") != std::string::npos);
  CHECK(parse_error(R"("abc)").find("unterminated string") != std::string::npos);
  CHECK(parse_error(R"("\x")").find("invalid escape") != std::string::npos);
  CHECK(parse_error("\"a\nb\"").find("control character") != std::string::npos);
  CHECK(parse_error("012").find("leading zeros") != std::string::npos);
  CHECK(parse_error("1.").find("after the decimal point") != std::string::npos);
  CHECK(parse_error("1e").find("exponent") != std::string::npos);
  CHECK(parse_error("-").find("digit") != std::string::npos);
  CHECK(parse_error("tru").find("invalid literal") != std::string::npos);
  CHECK(parse_error("nul1").find("invalid literal") != std::string::npos);
  CHECK(parse_error("{} x").find("unexpected text after") != std::string::npos);
  CHECK(parse_error("'a'").find("unexpected character") != std::string::npos);
  CHECK(parse_error(R"("\ud83d")").find("unpaired high surrogate") != std::string::npos);
  CHECK(parse_error(R"("\ude00")").find("unpaired low surrogate") != std::string::npos);
  CHECK(parse_error(R"("\ud83d\u0041")").find("invalid low surrogate") != std::string::npos);
  CHECK(parse_error(R"("\u12")").find("\\u escape") != std::string::npos);
  CHECK(parse_error("\"\xc0\x80\"").find("invalid UTF-8") != std::string::npos);         // overlong NUL
  CHECK(parse_error("\"\xed\xa0\x80\"").find("invalid UTF-8") != std::string::npos);     // encoded surrogate
  CHECK(parse_error("\"\xf4\x90\x80\x80\"").find("invalid UTF-8") != std::string::npos); // > U+10FFFF
  CHECK(parse_error("\"\xe2\x82\"").find("invalid UTF-8") != std::string::npos);
  CHECK(parse_error("\"\xe2\x82").find("UTF-8") != std::string::npos);
  CHECK(parse_error("1e999").find("out of the range") != std::string::npos);
}

TEST_CASE("hostile input never crashes: deep nesting and every truncation") {
  CHECK(parse_error(std::string(100000, '[')).find("nesting deeper than 512") != std::string::npos);
  CHECK(parse_error(std::string(100000, '{')).find("expected a string key") != std::string::npos);
  CHECK(parse_error(std::string(511, '[') + std::string(511, ']')).empty());

  const std::string doc = R"({"name": "h\u00e9llo \ud83d\ude00", "shape": [1, 2, 3], "x": -1.5e-3,
                              "ok": true, "n": null, "nested": {"a": [[], {}], "b": "\n"}})";
  REQUIRE(parse_error(doc).empty());
  for (std::size_t n = 0; n < doc.size(); ++n) {
    const std::string prefix = doc.substr(0, n);
    bool threw = false;
    try {
      (void)json::parse(prefix);
    } catch (const grad::io_error&) {
      threw = true;
    }
    CHECK_MESSAGE(threw, "prefix of length " << n << " parsed");
  }
}

TEST_CASE("type errors are value_errors naming both kinds") {
  const auto v = json::parse(R"({"a": "x"})");
  CHECK_THROWS_WITH_AS(v.at("a").as_int(), "JSON: expected an integer, got a string", grad::value_error);
  CHECK_THROWS_AS(v.at("b"), grad::value_error);
  CHECK_THROWS_AS(v.at(std::size_t{0}), grad::value_error);
  CHECK(json::parse("[1]").at(0).as_double() == 1.0);
  CHECK_THROWS_AS(json::parse("1.5").as_int(), grad::value_error);
}

TEST_CASE("dump writes JSON that parses back to the same value") {
  const std::string text =
      R"({"a":[1,-2,3.5,1e+300,-0.0],"s":"q\"\\\n\u0001é","t":true,"f":false,"n":null,"o":{}})";
  const auto v = json::parse(text);
  const std::string out = json::dump(v);
  CHECK(json::parse(out) == v);
  CHECK(json::dump(json::parse("[1.0, 2]")) == "[1.0,2]");
  CHECK(json::quote("a\"b\x01") == "\"a\\\"b\\u0001\"");
  CHECK_THROWS_AS(json::dump(json::value(std::numeric_limits<double>::infinity())), grad::value_error);
}

TEST_CASE("a 50257-entry vocabulary like GPT-2's encoder.json parses quickly") {
  std::string text = "{";
  for (int i = 0; i < 50257; ++i) {
    text += i ? ", " : "";
    text += "\"\\u0120tok" + std::to_string(i) + "\xc3\xa9\": " + std::to_string(i);
  }
  text += "}";
  const auto t0 = std::chrono::steady_clock::now();
  const auto v = json::parse(text, "encoder.json");
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("parsed " << text.size() << " bytes, 50257 entries, in " << ms << " ms");
  REQUIRE(v.size() == 50257);
  CHECK(v.as_object()[50256].first == "\xc4\xa0tok50256\xc3\xa9");
  CHECK(v.as_object()[50256].second.as_int() == 50256);
}
