#pragma once
/// @file io/json.hpp
/// A small, strict, bounds-checked JSON parser (RFC 8259) and writer: safetensors headers,
/// config.json and tokenizer vocabularies. Invalid input throws io_error with the byte offset.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "grad/core/error.hpp"

namespace grad::json {

class value;
/// A JSON array.
using array = std::vector<value>;
/// A JSON object: its members in file order (lookups are linear; build a map for big objects).
using object = std::vector<std::pair<std::string, value>>;

/// One JSON value: null, boolean, integer (exact int64), number (double), string, array or object.
class value {
public:
  /// The kind of a value.
  enum class kind : unsigned char { null, boolean, integer, number, string, array, object };

  /// null.
  value() noexcept = default;
  /// null.
  value(std::nullptr_t) noexcept {}
  /// true or false.
  value(bool b) noexcept : v_(b) {}
  /// An integer (numbers written without fraction or exponent that fit in int64).
  value(std::int64_t i) noexcept : v_(i) {}
  /// An integer.
  value(int i) noexcept : v_(std::int64_t{i}) {}
  /// A number with a fraction or exponent, or an integer too large for int64.
  value(double d) noexcept : v_(d) {}
  /// A string (UTF-8).
  value(std::string s) noexcept : v_(std::move(s)) {}
  /// A string (UTF-8).
  value(const char* s) : v_(std::string(s)) {}
  /// An array.
  value(array a) noexcept : v_(std::move(a)) {}
  /// An object.
  value(object o) noexcept : v_(std::move(o)) {}

  /// The kind of this value.
  kind type() const noexcept { return static_cast<kind>(v_.index()); }
  /// True for null.
  bool is_null() const noexcept { return type() == kind::null; }
  /// True for true/false.
  bool is_bool() const noexcept { return type() == kind::boolean; }
  /// True for an integer that fits in int64.
  bool is_integer() const noexcept { return type() == kind::integer; }
  /// True for any number (integer or not).
  bool is_number() const noexcept { return type() == kind::integer || type() == kind::number; }
  /// True for a string.
  bool is_string() const noexcept { return type() == kind::string; }
  /// True for an array.
  bool is_array() const noexcept { return type() == kind::array; }
  /// True for an object.
  bool is_object() const noexcept { return type() == kind::object; }

  /// The boolean; throws value_error for other kinds.
  bool as_bool() const { return get<bool>("a boolean"); }
  /// The integer; throws value_error for other kinds (also for 1.0: integers are written without a dot).
  std::int64_t as_int() const { return get<std::int64_t>("an integer"); }
  /// The number as a double (integers are converted).
  double as_double() const {
    return is_integer() ? static_cast<double>(std::get<std::int64_t>(v_)) : get<double>("a number");
  }
  /// The string; throws value_error for other kinds.
  const std::string& as_string() const { return get<std::string>("a string"); }
  /// The array; throws value_error for other kinds.
  const array& as_array() const { return get<array>("an array"); }
  /// The object; throws value_error for other kinds.
  const object& as_object() const { return get<object>("an object"); }

  /// The member `key` of an object, or nullptr when absent (or when this is not an object).
  const value* find(std::string_view key) const noexcept {
    if (const auto* o = std::get_if<object>(&v_))
      for (const auto& [k, v] : *o)
        if (k == key)
          return &v;
    return nullptr;
  }
  /// The member `key` of an object; throws value_error when absent.
  const value& at(std::string_view key) const {
    (void)as_object();
    if (const value* v = find(key))
      return *v;
    throw value_error("JSON: object has no member \"" + std::string(key) + "\"");
  }
  /// Element `i` of an array; throws value_error when out of range.
  const value& at(std::size_t i) const {
    const auto& a = as_array();
    if (i >= a.size())
      throw value_error("JSON: index " + std::to_string(i) + " out of range for an array of " +
                        std::to_string(a.size()) + " elements");
    return a[i];
  }
  /// Number of elements of an array or members of an object (0 for other kinds).
  std::size_t size() const noexcept {
    if (const auto* a = std::get_if<array>(&v_))
      return a->size();
    if (const auto* o = std::get_if<object>(&v_))
      return o->size();
    return 0;
  }

  /// Deep equality (an integer never equals a non-integer number, as they are different kinds).
  friend bool operator==(const value&, const value&) = default;

private:
  template <class X>
  const X& get(const char* what) const {
    if (const X* p = std::get_if<X>(&v_))
      return *p;
    static constexpr const char* names[] = {"null",     "a boolean", "an integer", "a number",
                                            "a string", "an array",  "an object"};
    throw value_error(std::string("JSON: expected ") + what + ", got " + names[v_.index()]);
  }

  std::variant<std::nullptr_t, bool, std::int64_t, double, std::string, array, object> v_;
};

namespace detail {

// Recursive descent over [p, end): every read is checked against end.
class parser {
public:
  parser(std::string_view text, std::string_view source)
      : b_(text.data()), p_(b_), e_(b_ + text.size()), src_(source) {}

  value parse_document() {
    skip_ws();
    value v = parse_value(0);
    skip_ws();
    if (p_ != e_)
      fail("unexpected text after the JSON value");
    return v;
  }

private:
  static constexpr int max_depth = 512; // deeper nesting would only come from a hostile file

  [[noreturn]] void fail(std::string_view what) const { fail_at(p_, what); }
  [[noreturn]] void fail_at(const char* at, std::string_view what) const {
    std::string m(src_.empty() ? std::string_view("JSON") : src_);
    m += ": invalid JSON at byte " + std::to_string(at - b_) + ": ";
    m += what;
    throw io_error(m);
  }

  void skip_ws() noexcept {
    while (p_ != e_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t'))
      ++p_;
  }

  value parse_value(int depth) {
    if (p_ == e_)
      fail("unexpected end of input, expected a value");
    switch (*p_) {
    case '{':
      return parse_object(depth + 1);
    case '[':
      return parse_array(depth + 1);
    case '"':
      return value(parse_string());
    case 't':
      return literal("true", value(true));
    case 'f':
      return literal("false", value(false));
    case 'n':
      return literal("null", value());
    default:
      if (*p_ == '-' || (*p_ >= '0' && *p_ <= '9'))
        return parse_number();
      fail(std::string("unexpected character ") + describe(*p_) + ", expected a value");
    }
  }

  static std::string describe(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f)
      return std::string("'") + c + "'";
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02x", u);
    return buf;
  }

  value literal(std::string_view word, value v) {
    if (static_cast<std::size_t>(e_ - p_) < word.size() || std::string_view(p_, word.size()) != word)
      fail("invalid literal, expected '" + std::string(word) + "'");
    p_ += word.size();
    return v;
  }

  value parse_object(int depth) {
    if (depth > max_depth)
      fail("nesting deeper than 512 levels");
    ++p_; // '{'
    object o;
    skip_ws();
    if (p_ != e_ && *p_ == '}') {
      ++p_;
      return value(std::move(o));
    }
    for (;;) {
      skip_ws();
      if (p_ == e_ || *p_ != '"')
        fail("expected a string key in an object");
      std::string key = parse_string();
      skip_ws();
      if (p_ == e_ || *p_ != ':')
        fail("expected ':' after an object key");
      ++p_;
      skip_ws();
      o.emplace_back(std::move(key), parse_value(depth));
      skip_ws();
      if (p_ != e_ && *p_ == ',') {
        ++p_;
        continue;
      }
      if (p_ != e_ && *p_ == '}') {
        ++p_;
        return value(std::move(o));
      }
      fail("expected ',' or '}' after an object member");
    }
  }

  value parse_array(int depth) {
    if (depth > max_depth)
      fail("nesting deeper than 512 levels");
    ++p_; // '['
    array a;
    skip_ws();
    if (p_ != e_ && *p_ == ']') {
      ++p_;
      return value(std::move(a));
    }
    for (;;) {
      skip_ws();
      a.push_back(parse_value(depth));
      skip_ws();
      if (p_ != e_ && *p_ == ',') {
        ++p_;
        continue;
      }
      if (p_ != e_ && *p_ == ']') {
        ++p_;
        return value(std::move(a));
      }
      fail("expected ',' or ']' after an array element");
    }
  }

  value parse_number() {
    const char* start = p_;
    bool integral = true;
    if (*p_ == '-')
      ++p_;
    if (p_ == e_ || *p_ < '0' || *p_ > '9')
      fail("expected a digit in a number");
    if (*p_ == '0') {
      ++p_;
      if (p_ != e_ && *p_ >= '0' && *p_ <= '9')
        fail("leading zeros are not allowed in numbers");
    } else {
      while (p_ != e_ && *p_ >= '0' && *p_ <= '9')
        ++p_;
    }
    if (p_ != e_ && *p_ == '.') {
      integral = false;
      ++p_;
      if (p_ == e_ || *p_ < '0' || *p_ > '9')
        fail("expected a digit after the decimal point");
      while (p_ != e_ && *p_ >= '0' && *p_ <= '9')
        ++p_;
    }
    if (p_ != e_ && (*p_ == 'e' || *p_ == 'E')) {
      integral = false;
      ++p_;
      if (p_ != e_ && (*p_ == '+' || *p_ == '-'))
        ++p_;
      if (p_ == e_ || *p_ < '0' || *p_ > '9')
        fail("expected a digit in the exponent");
      while (p_ != e_ && *p_ >= '0' && *p_ <= '9')
        ++p_;
    }
    if (integral) {
      std::int64_t i = 0;
      auto [end, ec] = std::from_chars(start, p_, i);
      if (ec == std::errc() && end == p_)
        return value(i);
      // too large for int64: fall through to a double, as JavaScript would
    }
    double d = 0;
    auto [end, ec] = std::from_chars(start, p_, d);
    if (end != p_ || (ec != std::errc() && ec != std::errc::result_out_of_range))
      fail_at(start, "invalid number");
    if (ec == std::errc::result_out_of_range)
      fail_at(start, "number out of the range of a double");
    return value(d);
  }

  unsigned hex4() {
    if (e_ - p_ < 4)
      fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i, ++p_) {
      const char c = *p_;
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<unsigned>(c - 'A' + 10);
      else
        fail("invalid hex digit in a \\u escape");
    }
    return v;
  }

  static void append_utf8(std::string& s, unsigned cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xc0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xe0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      s += static_cast<char>(0xf0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  // Length of the valid UTF-8 sequence at p_ (lead byte >= 0x80), or fails: rejects overlong forms,
  // surrogates and code points above U+10FFFF (the Unicode standard's table 3-7).
  std::size_t utf8_length() {
    const auto b = [&](std::ptrdiff_t i) { return static_cast<unsigned char>(p_[i]); };
    const unsigned char c = b(0);
    std::size_t n;
    unsigned char lo = 0x80, hi = 0xbf; // allowed range of the second byte
    if (c >= 0xc2 && c <= 0xdf)
      n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 3;
      if (c == 0xe0)
        lo = 0xa0;
      if (c == 0xed)
        hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 4;
      if (c == 0xf0)
        lo = 0x90;
      if (c == 0xf4)
        hi = 0x8f;
    } else
      fail("invalid UTF-8 in a string");
    if (static_cast<std::size_t>(e_ - p_) < n)
      fail("truncated UTF-8 sequence in a string");
    if (b(1) < lo || b(1) > hi)
      fail("invalid UTF-8 in a string");
    for (std::size_t i = 2; i < n; ++i)
      if ((b(static_cast<std::ptrdiff_t>(i)) & 0xc0) != 0x80)
        fail("invalid UTF-8 in a string");
    return n;
  }

  std::string parse_string() {
    const char* open = p_;
    ++p_; // '"'
    std::string s;
    for (;;) {
      const char* run = p_; // copy plain ASCII in runs: the common case in vocabularies
      while (p_ != e_) {
        const auto u = static_cast<unsigned char>(*p_);
        if (u == '"' || u == '\\' || u < 0x20 || u >= 0x80)
          break;
        ++p_;
      }
      s.append(run, p_);
      if (p_ == e_)
        fail_at(open, "unterminated string");
      const auto u = static_cast<unsigned char>(*p_);
      if (u == '"') {
        ++p_;
        return s;
      }
      if (u < 0x20)
        fail("control character in a string (must be escaped)");
      if (u >= 0x80) {
        const std::size_t n = utf8_length();
        s.append(p_, n);
        p_ += n;
        continue;
      }
      ++p_; // '\\'
      if (p_ == e_)
        fail("truncated escape in a string");
      const char c = *p_++;
      switch (c) {
      case '"':
        s += '"';
        break;
      case '\\':
        s += '\\';
        break;
      case '/':
        s += '/';
        break;
      case 'b':
        s += '\b';
        break;
      case 'f':
        s += '\f';
        break;
      case 'n':
        s += '\n';
        break;
      case 'r':
        s += '\r';
        break;
      case 't':
        s += '\t';
        break;
      case 'u': {
        unsigned cp = hex4();
        if (cp >= 0xdc00 && cp <= 0xdfff)
          fail("unpaired low surrogate in a \\u escape");
        if (cp >= 0xd800 && cp <= 0xdbff) { // a high surrogate must be followed by \uDC00-\uDFFF
          if (e_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u')
            fail("unpaired high surrogate in a \\u escape");
          p_ += 2;
          const unsigned lo = hex4();
          if (lo < 0xdc00 || lo > 0xdfff)
            fail("invalid low surrogate in a \\u escape");
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        append_utf8(s, cp);
        break;
      }
      default:
        --p_;
        fail("invalid escape \\" + describe(c));
      }
    }
  }

  const char* b_;
  const char* p_;
  const char* e_;
  std::string_view src_;
};

inline void dump_to(std::string& out, const value& v);

} // namespace detail

/// Parses a complete JSON document. `source` (e.g. the file name) starts every error message:
/// `config.json: invalid JSON at byte 17: expected ',' or '}' after an object member`.
inline value parse(std::string_view text, std::string_view source = {}) {
  return detail::parser(text, source).parse_document();
}

/// `s` as a JSON string literal, with quotes and escapes (control characters as \u00XX).
inline std::string quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char c : s) {
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
        out += buf;
      } else {
        out += c;
      }
    }
  }
  out += '"';
  return out;
}

/// Compact JSON text of `v` (no spaces). Non-finite numbers throw value_error: JSON has none.
inline std::string dump(const value& v) {
  std::string out;
  detail::dump_to(out, v);
  return out;
}

namespace detail {

inline void dump_to(std::string& out, const value& v) {
  switch (v.type()) {
  case value::kind::null:
    out += "null";
    return;
  case value::kind::boolean:
    out += v.as_bool() ? "true" : "false";
    return;
  case value::kind::integer:
    out += std::to_string(v.as_int());
    return;
  case value::kind::number: {
    const double d = v.as_double();
    if (!(d == d) || d - d != 0)
      throw value_error("JSON: cannot write the non-finite number " + std::to_string(d));
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d); // shortest text that reads back exactly
    std::string_view t(buf, static_cast<std::size_t>(end - buf));
    out += t;
    if (ec == std::errc() && t.find_first_of(".eE") == std::string_view::npos)
      out += ".0"; // stay a non-integer when read back
    return;
  }
  case value::kind::string:
    out += quote(v.as_string());
    return;
  case value::kind::array: {
    out += '[';
    bool first = true;
    for (const auto& e : v.as_array()) {
      if (!first)
        out += ',';
      first = false;
      dump_to(out, e);
    }
    out += ']';
    return;
  }
  case value::kind::object: {
    out += '{';
    bool first = true;
    for (const auto& [k, e] : v.as_object()) {
      if (!first)
        out += ',';
      first = false;
      out += quote(k);
      out += ':';
      dump_to(out, e);
    }
    out += '}';
    return;
  }
  }
}

} // namespace detail
} // namespace grad::json
