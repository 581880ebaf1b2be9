// Tests of include/grad/utils: CSV files, SVG plots, the progress bar and atomic writes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <unistd.h>

#include <grad/utils/csv.hpp>
#include <grad/utils/file.hpp>
#include <grad/utils/plot.hpp>
#include <grad/utils/progress.hpp>

namespace fs = std::filesystem;
namespace gu = grad::utils;

namespace {

// A fresh, empty directory for one test, removed when the test ends.
struct scratch_dir {
  fs::path path;
  explicit scratch_dir(const std::string& name) {
    path = fs::temp_directory_path() / ("grad_test_utils_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::vector<std::string> files() const {
    std::vector<std::string> r;
    for (const auto& e : fs::directory_iterator(path))
      r.push_back(e.path().filename().string());
    return r;
  }
};

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary) << s;
}

// The message of the io_error that f throws ("" when it throws none).
template <class F>
std::string io_error_message(F&& f) {
  try {
    f();
  } catch (const grad::io_error& e) {
    return e.what();
  }
  return "";
}

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1))
    ++n;
  return n;
}

// A small XML well-formedness check: tags nest and close, attribute values are quoted, '&' starts one
// of the five predefined entities, and no '<' or '>' appears in text. Returns "" or the first problem.
std::string xml_problem(const std::string& s) {
  std::vector<std::string> open;
  std::size_t i = 0;
  auto check_entities = [](const std::string& text) -> std::string {
    for (std::size_t p = text.find('&'); p != std::string::npos; p = text.find('&', p + 1)) {
      bool ok = false;
      for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"})
        ok = ok || text.compare(p, std::char_traits<char>::length(e), e) == 0;
      if (!ok)
        return "bad entity in: " + text.substr(p, 12);
    }
    return "";
  };
  while (i < s.size()) {
    if (s[i] != '<') {
      const std::size_t next = s.find('<', i);
      const std::string text = s.substr(i, next - i);
      if (text.find('>') != std::string::npos)
        return "'>' in text: " + text;
      if (auto p = check_entities(text); !p.empty())
        return p;
      i = next == std::string::npos ? s.size() : next;
      continue;
    }
    // Find the end of the tag, skipping quoted attribute values.
    std::size_t j = i + 1;
    char quote = 0;
    for (; j < s.size(); ++j) {
      if (quote) {
        if (s[j] == quote)
          quote = 0;
        else if (s[j] == '<')
          return "'<' in an attribute value";
      } else if (s[j] == '"' || s[j] == '\'') {
        quote = s[j];
      } else if (s[j] == '>') {
        break;
      }
    }
    if (j >= s.size())
      return "unterminated tag";
    const std::string tag = s.substr(i + 1, j - i - 1);
    if (auto p = check_entities(tag); !p.empty())
      return p;
    if (tag.empty())
      return "empty tag";
    if (tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (open.empty() || open.back() != name)
        return "closing </" + name + "> does not match <" + (open.empty() ? "" : open.back()) + ">";
      open.pop_back();
    } else if (tag.back() != '/' && tag[0] != '?' && tag[0] != '!') {
      open.push_back(tag.substr(0, tag.find_first_of(" \t\n")));
    }
    i = j + 1;
  }
  return open.empty() ? "" : "unclosed <" + open.back() + ">";
}

} // namespace

// ---------------------------------------------------------------------------------------------------
// CSV

TEST_CASE("csv: write then read gives back the same numbers") {
  scratch_dir dir("csv_roundtrip");
  const fs::path file = dir.path / "loss.csv";
  const std::vector<double> step = {0, 1, 2, 3};
  const std::vector<double> loss = {16.433044, 0.1, 1e-30, -3.5e12};
  gu::write_csv(file, {"step", "loss"}, {step, loss});
  const gu::csv_columns t = gu::read_csv_columns(file);
  REQUIRE(t.names == std::vector<std::string>{"step", "loss"});
  CHECK(t.rows() == 4);
  CHECK(t["step"] == step);
  CHECK(t["loss"] == loss); // shortest round-trip formatting: bit-exact
  CHECK(t.contains("loss"));
  CHECK_FALSE(t.contains("lr"));
  CHECK_THROWS_AS(t["lr"], grad::value_error);
}

TEST_CASE("csv: float columns are written in their shortest form and read back exactly") {
  const std::vector<float> v = {0.1f, 1.0f / 3.0f, 16.433044f};
  const std::string text = gu::format_csv<float>({"v"}, {v});
  CHECK(text.find("0.1\n") != std::string::npos); // not 0.100000001
  const gu::csv_columns t = gu::parse_csv_columns(text);
  for (std::size_t i = 0; i < v.size(); ++i)
    CHECK(static_cast<float>(t.columns[0][i]) == v[i]);
}

TEST_CASE("csv: non-finite values, quoted names, CRLF, blank lines and a BOM") {
  const std::string text =
      gu::format_csv({"a,b", "say \"hi\""}, {{std::numeric_limits<double>::infinity(), 1.0},
                                             {std::numeric_limits<double>::quiet_NaN(), 2.0}});
  CHECK(text.rfind("\"a,b\",\"say \"\"hi\"\"\"\n", 0) == 0);
  const gu::csv_columns t = gu::parse_csv_columns(text);
  CHECK(t.names == std::vector<std::string>{"a,b", "say \"hi\""});
  CHECK(std::isinf(t.columns[0][0]));
  CHECK(std::isnan(t.columns[1][0]));

  const gu::csv_columns u =
      gu::parse_csv_columns("\xEF\xBB\xBF\"YEAR\",\"SUNACTIVITY\"\r\n1700,5\r\n\r\n 1701 , +11 \r\n");
  CHECK(u.names == std::vector<std::string>{"YEAR", "SUNACTIVITY"});
  CHECK(u["YEAR"] == std::vector<double>{1700, 1701});
  CHECK(u["SUNACTIVITY"] == std::vector<double>{5, 11});
}

TEST_CASE("csv: a header without data is an empty table") {
  const gu::csv_columns t = gu::parse_csv_columns("x,y\n");
  CHECK(t.rows() == 0);
  CHECK(t.names.size() == 2);
}

TEST_CASE("csv: malformed files throw io_error naming the file and the line") {
  scratch_dir dir("csv_malformed");
  const fs::path file = dir.path / "bad.csv";

  write_text(file, "x,y\n1,2\n3,abc\n");
  std::string msg = io_error_message([&] { gu::read_csv_columns(file); });
  CHECK(msg.find("bad.csv:3:") != std::string::npos);
  CHECK(msg.find("\"abc\" is not a number") != std::string::npos);
  CHECK(msg.find("column \"y\"") != std::string::npos);

  write_text(file, "x,y\n1,2\n\n4,5,6\n");
  msg = io_error_message([&] { gu::read_csv_columns(file); });
  CHECK(msg.find("bad.csv:4:") != std::string::npos); // blank lines still count
  CHECK(msg.find("expected 2 fields") != std::string::npos);

  write_text(file, "x,y\n1,\n");
  msg = io_error_message([&] { gu::read_csv_columns(file); });
  CHECK(msg.find("bad.csv:2: missing value") != std::string::npos);

  write_text(file, "x,y\n\"1,2\n");
  msg = io_error_message([&] { gu::read_csv_columns(file); });
  CHECK(msg.find("bad.csv:2:") != std::string::npos);
  CHECK(msg.find("not closed") != std::string::npos);

  write_text(file, "x,,z\n");
  CHECK(io_error_message([&] { gu::read_csv_columns(file); }).find("bad.csv:1:") != std::string::npos);

  write_text(file, "\n\n");
  CHECK(io_error_message([&] { gu::read_csv_columns(file); }).find("empty") != std::string::npos);

  msg = io_error_message([&] { gu::read_csv_columns(dir.path / "missing.csv"); });
  CHECK(msg.find("missing.csv") != std::string::npos);
  CHECK(msg.find("cannot open") != std::string::npos);

  CHECK_FALSE(io_error_message([&] { gu::read_csv_columns(dir.path); }).empty()); // a directory
}

TEST_CASE("csv: columns of different lengths are refused") {
  CHECK_THROWS_AS(gu::format_csv({"a", "b"}, {{1.0, 2.0}, {1.0}}), grad::value_error);
  CHECK_THROWS_AS(gu::format_csv({"a"}, {{1.0}, {2.0}}), grad::value_error);
}

// ---------------------------------------------------------------------------------------------------
// Atomic writes

TEST_CASE("atomic write: the target is complete and no temporary file is left") {
  scratch_dir dir("atomic");
  const fs::path csv = dir.path / "loss.csv";
  const fs::path svg = dir.path / "loss.svg";
  std::vector<double> big(20000);
  for (std::size_t i = 0; i < big.size(); ++i)
    big[i] = 1.0 / static_cast<double>(i + 1);
  gu::write_csv(csv, {"loss"}, {big});
  gu::write_csv(csv, {"loss"}, {big}); // replacing an existing file
  gu::svg_plot p({.title = "t"});
  p.line("loss", big).save(svg);

  auto files = dir.files();
  std::sort(files.begin(), files.end());
  CHECK(files == std::vector<std::string>{"loss.csv", "loss.svg"});
  const std::string text = gu::read_file(csv);
  CHECK(text == gu::format_csv({"loss"}, {big}));
  CHECK(gu::read_csv_columns(csv).rows() == big.size());
  CHECK(gu::read_file(svg) == p.str());
}

TEST_CASE("atomic write: a failed write throws io_error naming the file and leaves nothing behind") {
  scratch_dir dir("atomic_fail");
  const fs::path target = dir.path / "no" / "such" / "dir" / "out.csv";
  const std::string msg = io_error_message([&] { gu::write_file_atomic(target, "x"); });
  CHECK(msg.find("out.csv") != std::string::npos);
  CHECK(dir.files().empty());

  // Renaming over a directory fails after the temporary file was written: it must be removed.
  fs::create_directories(dir.path / "taken");
  write_text(dir.path / "taken" / "inside", "keeps the directory non-empty");
  CHECK_FALSE(io_error_message([&] { gu::write_file_atomic(dir.path / "taken", "x"); }).empty());
  CHECK(dir.files() == std::vector<std::string>{"taken"});
}

// ---------------------------------------------------------------------------------------------------
// SVG plots

TEST_CASE("plot: well-formed SVG with one polyline per line series and escaped labels") {
  gu::svg_plot p({.title = "loss <of> A & B", .xlabel = "step \"s\"", .ylabel = "it's y"});
  const std::vector<double> x = {0, 1, 2, 3};
  p.line("a < b", x, std::vector<double>{1, 2, 3, 4});
  p.line("c & d", x, std::vector<float>{4, 3, 2, 1});
  p.dashed("truth > all", x, std::vector<double>{2, 2, 2, 2});
  p.points("data", x, std::vector<int>{1, 3, 2, 4});
  const std::string s = p.str();
  CHECK(s.rfind("<svg", 0) == 0);
  CHECK(s.find("xmlns=\"http://www.w3.org/2000/svg\"") != std::string::npos);
  CHECK(s.ends_with("</svg>\n"));
  CHECK(xml_problem(s) == "");
  CHECK(count(s, "<polyline") == 3);
  CHECK(count(s, "stroke-dasharray") == 2); // the dashed series and its legend sample
  CHECK(count(s, "<circle") == 4 + 1);      // the points and the legend's dot
  CHECK(s.find("a &lt; b") != std::string::npos);
  CHECK(s.find("c &amp; d") != std::string::npos);
  CHECK(s.find("truth &gt; all") != std::string::npos);
  CHECK(s.find("loss &lt;of&gt; A &amp; B") != std::string::npos);
  CHECK(s.find("step &quot;s&quot;") != std::string::npos);
  CHECK(s.find("it&apos;s y") != std::string::npos);
  CHECK(s.find("a < b") == std::string::npos);
}

TEST_CASE("plot: every series gets its own colour, and explicit colours do not use one up") {
  gu::svg_plot p;
  const std::vector<double> v = {1, 2};
  p.points("data", v, v, "#999999").line("one", v, v).line("two", v, v);
  REQUIRE(p.series().size() == 3);
  CHECK(p.series()[0].color == "#999999");
  CHECK(p.series()[1].color == "#1f77b4");
  CHECK(p.series()[2].color == "#ff7f0e");
}

TEST_CASE("plot: non-finite points, and y <= 0 on a log axis, are left out") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  gu::svg_plot p({.log_y = true});
  p.line("loss", std::vector<double>{1, 2, 3, 4, 5}, std::vector<double>{10, 0, nan, -1, 0.1});
  const std::string s = p.str();
  CHECK(xml_problem(s) == "");
  CHECK(s.find("nan") == std::string::npos);
  CHECK(s.find("inf") == std::string::npos);
  const std::size_t pts = s.find("points=\"");
  REQUIRE(pts != std::string::npos);
  CHECK(count(s.substr(pts, s.find('"', pts + 8) - pts), ",") == 2); // two usable points
  // Log axis: decades from 0.1 to 10.
  CHECK(s.find(">0.1</text>") != std::string::npos);
  CHECK(s.find(">10</text>") != std::string::npos);
}

TEST_CASE("plot: an empty plot and a single point still render") {
  CHECK(xml_problem(gu::svg_plot().str()) == "");
  gu::svg_plot p;
  p.line("one", std::vector<double>{1}, std::vector<double>{1});
  CHECK(xml_problem(p.str()) == "");
}

TEST_CASE("plot: long series are thinned to the pixels they cover") {
  std::vector<double> y(200000);
  for (std::size_t i = 0; i < y.size(); ++i)
    y[i] = std::sin(static_cast<double>(i) * 1e-3);
  gu::svg_plot p;
  p.line("long", y);
  const std::string s = p.str();
  CHECK(s.size() < 40000); // ~660 pixel columns x 2 points, not 200000 points
  CHECK(xml_problem(s) == "");
}

TEST_CASE("plot: mismatched x and y are refused") {
  gu::svg_plot p;
  CHECK_THROWS_AS(p.line("bad", std::vector<double>{1, 2}, std::vector<double>{1}), grad::value_error);
}

TEST_CASE("plot: nice ticks") {
  const auto a = gu::detail::linear_axis(0.03, 0.97);
  CHECK(a.lo == doctest::Approx(0));
  CHECK(a.hi == doctest::Approx(1));
  CHECK(a.ticks.size() == 6); // 0, 0.2, ..., 1
  CHECK(gu::detail::tick_label(a.ticks[3]) == "0.6");
  const auto b = gu::detail::linear_axis(-2, 2);
  CHECK(b.ticks.front() == doctest::Approx(-2));
  CHECK(std::find(b.ticks.begin(), b.ticks.end(), 0.0) != b.ticks.end()); // an exact 0, not 1e-17
  const auto big = gu::detail::linear_axis(1e16, 1e16 + 4); // a step below the spacing of doubles there
  CHECK(big.ticks.size() <= 1001);
  const auto c = gu::detail::linear_axis(5, 5); // a single value: a range around it
  CHECK(c.lo < 5);
  CHECK(c.hi > 5);
  const auto l = gu::detail::log_axis(0.0089, 0.46);
  CHECK(l.lo == doctest::Approx(0.001));
  CHECK(l.hi == doctest::Approx(1));
  CHECK(gu::detail::nice_step(0.13) == doctest::Approx(0.2));
  CHECK(gu::detail::nice_step(3.3) == doctest::Approx(5));
  CHECK(gu::detail::nice_step(70) == doctest::Approx(100));
}

// ---------------------------------------------------------------------------------------------------
// Progress bar

TEST_CASE("progress: durations and rates") {
  CHECK(gu::format_duration(0) == "0:00");
  CHECK(gu::format_duration(7.4) == "0:07");
  CHECK(gu::format_duration(65) == "1:05");
  CHECK(gu::format_duration(3723) == "1:02:03");
  CHECK(gu::format_duration(-1) == "?");
  CHECK(gu::format_duration(std::numeric_limits<double>::infinity()) == "?");
  CHECK(gu::format_rate(312.4) == "312 it/s");
  CHECK(gu::format_rate(12.34) == "12.3 it/s");
  CHECK(gu::format_rate(1250) == "1.25k it/s");
  CHECK(gu::format_rate(32700) == "32.7k it/s");
  CHECK(gu::format_rate(3.4e6, "tok") == "3.40M tok/s");
  CHECK(gu::format_rate(0.5) == "2.00 s/it");
  CHECK(gu::format_rate(0) == "? it/s");
}

TEST_CASE("progress: the line shows percent, bar, count, elapsed<ETA and rate") {
  // 250 of 1000 in 2 s: 125 it/s, 750 left take 6 s.
  CHECK(gu::format_progress(250, 1000, 2.0, "train", "loss 0.5", 10) ==
        "train   25% [==>       ] 250/1000 [0:02<0:06, 125 it/s] loss 0.5");
  CHECK(gu::format_progress(0, 10, 0.0, "", "", 4) == "  0% [    ] 0/10 [0:00<?, ? it/s]");
  CHECK(gu::format_progress(10, 10, 3.0, "", "", 4) == "100% [====] 10/10 [0:03<0:00, 3.3 it/s]");
  CHECK(gu::format_progress(5, 10, 1.0, "", "", 0) == " 50% 5/10 [0:01<0:01, 5.0 it/s]"); // no bar
  CHECK(gu::format_progress(0, 0, 0.0, "", "", 4) == "100% [====] 0/0 [0:00<0:00, ? it/s]");
}

TEST_CASE("progress: plain lines without a terminal, a redrawn line on a terminal") {
  auto run = [](bool terminal) {
    std::FILE* f = std::tmpfile();
    REQUIRE(f != nullptr);
    {
      gu::progress_bar bar(100, {.label = "work", .stream = f, .terminal = terminal});
      for (int i = 0; i < 100; ++i) {
        bar.tick();
        if (i == 49)
          bar.write("halfway");
      }
    } // the destructor finishes the bar
    std::rewind(f);
    std::string s;
    for (int c; (c = std::fgetc(f)) != EOF;)
      s += static_cast<char>(c);
    std::fclose(f);
    return s;
  };
  const std::string plain = run(false);
  CHECK(plain.find('\r') == std::string::npos);
  CHECK(plain.find("halfway\n") != std::string::npos);
  CHECK(plain.find("work  100% 100/100") != std::string::npos); // the final line, without a bar
  CHECK(count(plain, "work ") == 1);                            // a fast run prints only its final line
  const std::string tty = run(true);
  CHECK(tty.find('\r') != std::string::npos);
  CHECK(tty.find("halfway\n") != std::string::npos);
  CHECK(tty.find("work  100% [==============================] 100/100") != std::string::npos);
  CHECK(tty.ends_with("\n"));
}
