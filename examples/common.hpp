#pragma once
// What the examples share: a tiny command-line parser (--steps 500, --lr=0.1, --help) and the output
// directory. Not part of the library: a real program would use its own favourite parser.

#include <charconv>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace examples {

/// Command-line flags of an example: register variables with add(), then parse().
class arg_parser {
public:
  /// A parser for program `name`; `about` is printed by --help.
  arg_parser(std::string name, std::string about) : name_(std::move(name)), about_(std::move(about)) {}

  /// Registers `--flag VALUE` (or `--flag=VALUE`) that sets `target`; its current value is the default.
  template <class T>
  arg_parser& add(std::string flag, T& target, std::string help) {
    flags_.push_back({std::move(flag), std::move(help), to_text(target),
                      [&target](std::string_view v) { return from_text(v, target); }});
    return *this;
  }

  /// Parses argv; returns false when the program should exit (after --help, or on a bad flag, when
  /// exit_code() is 2).
  bool parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        usage(stdout);
        return false;
      }
      std::string_view value;
      bool has_value = false;
      if (const auto eq = arg.find('='); eq != std::string_view::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_value = true;
      }
      const flag* f = find(arg);
      if (!f)
        return fail("unknown option " + std::string(arg));
      if (!has_value) {
        if (i + 1 >= argc)
          return fail("option " + std::string(arg) + " needs a value");
        value = argv[++i];
      }
      if (!f->set(value))
        return fail("option " + std::string(arg) + ": cannot use \"" + std::string(value) + "\"");
    }
    return true;
  }

  /// 0 after --help, 2 after a bad command line.
  int exit_code() const noexcept { return exit_code_; }

private:
  struct flag {
    std::string name, help, default_text;
    std::function<bool(std::string_view)> set;
  };

  const flag* find(std::string_view name) const {
    for (const auto& f : flags_)
      if (f.name == name)
        return &f;
    return nullptr;
  }
  bool fail(const std::string& message) {
    std::fprintf(stderr, "%s: %s\n\n", name_.c_str(), message.c_str());
    usage(stderr);
    exit_code_ = 2;
    return false;
  }
  void usage(std::FILE* out) const {
    std::fprintf(out, "usage: %s [options]\n%s\n\noptions:\n", name_.c_str(), about_.c_str());
    for (const auto& f : flags_)
      std::fprintf(out, "  %-10s %s (default: %s)\n", f.name.c_str(), f.help.c_str(), f.default_text.c_str());
    std::fprintf(out, "  %-10s show this help\n", "--help");
  }

  template <class T>
  static std::string to_text(const T& v) {
    if constexpr (std::is_same_v<T, std::string>)
      return v.empty() ? "none" : v;
    else if constexpr (std::is_same_v<T, std::filesystem::path>)
      return v.empty() ? "none" : v.string();
    else {
      char buf[64];
      const auto r = std::to_chars(buf, buf + sizeof buf, v);
      return std::string(buf, r.ptr);
    }
  }
  template <class T>
  static bool from_text(std::string_view s, T& v) {
    if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::filesystem::path>) {
      v = T(std::string(s));
      return true;
    } else {
      T parsed{};
      const auto r = std::from_chars(s.data(), s.data() + s.size(), parsed);
      if (r.ec != std::errc() || r.ptr != s.data() + s.size())
        return false;
      v = parsed;
      return true;
    }
  }

  std::string name_, about_;
  std::vector<flag> flags_;
  int exit_code_ = 0;
};

/// Creates the output directory (default: the current one) and returns it; prints why on failure.
inline bool prepare_output_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "cannot create the output directory %s: %s\n", dir.string().c_str(),
                 ec.message().c_str());
    return false;
  }
  return true;
}

} // namespace examples
