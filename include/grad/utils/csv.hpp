#pragma once
/// @file utils/csv.hpp
/// Numeric CSV files: write columns (loss curves, predictions) and read them back, with errors that
/// name the file and the line.

#include <charconv>
#include <concepts>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/utils/file.hpp"

namespace grad::utils {

/// Numeric columns of a CSV file with a header row.
struct csv_columns {
  std::vector<std::string> names;           ///< the header: one name per column
  std::vector<std::vector<double>> columns; ///< columns[i] holds the values under names[i]

  /// Number of data rows.
  std::size_t rows() const noexcept { return columns.empty() ? 0 : columns.front().size(); }
  /// True when a column has this name.
  bool contains(std::string_view name) const noexcept {
    for (const auto& n : names)
      if (n == name)
        return true;
    return false;
  }
  /// The column named `name`; throws value_error listing the names there are.
  const std::vector<double>& operator[](std::string_view name) const {
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == name)
        return columns[i];
    std::string have;
    for (const auto& n : names)
      have.append(have.empty() ? "" : ", ").append(n);
    throw value_error("csv: no column named \"" + std::string(name) + "\"; the columns are: " + have);
  }
};

namespace detail {

/// s without leading and trailing blanks (and a trailing '\r' of a CRLF line end).
inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

/// Splits one CSV line into fields (RFC 4180 quoting within the line: "a,b" and "say ""hi"""). Returns
/// false on an unterminated quote.
inline bool split_csv_line(std::string_view line, std::vector<std::string>& fields) {
  fields.clear();
  std::size_t i = 0;
  for (;;) {
    std::string f;
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
      ++i;
    if (i < line.size() && line[i] == '"') {
      ++i;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            f += '"';
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        f += line[i++];
      }
      if (!closed)
        return false;
      while (i < line.size() && line[i] != ',') // spaces after the closing quote
        ++i;
    } else {
      const std::size_t start = i;
      while (i < line.size() && line[i] != ',')
        ++i;
      f = std::string(trim(line.substr(start, i - start)));
    }
    fields.push_back(std::move(f));
    if (i >= line.size())
      return true;
    ++i; // the comma
  }
}

/// Reads a whole field as a number (blanks around it allowed); false when it is not one.
inline bool parse_double(std::string_view s, double& v) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') // from_chars rejects a leading '+', which CSV writers do emit
    s.remove_prefix(1);
  if (s.empty())
    return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

/// The field as written in a CSV file: quoted (with doubled quotes) when it needs to be.
inline std::string quote_csv_field(std::string_view s) {
  if (s.find_first_of(",\"\n\r") == std::string_view::npos && trim(s).size() == s.size())
    return std::string(s);
  std::string q = "\"";
  for (char c : s) {
    if (c == '"')
      q += '"';
    q += c;
  }
  return q + '"';
}

/// Appends v in the shortest form that reads back exactly.
template <std::floating_point T = double>
void append_number(std::string& out, T v) {
  char buf[64];
  // Shortest text that reads back to the same T: 0.1f prints as 0.1, not 0.100000001.
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

} // namespace detail

/// Parses CSV text with a header row and numeric values; `source` names it in errors (a file name).
/// Blank lines are skipped; a missing or non-numeric value throws io_error with the line number.
inline csv_columns parse_csv_columns(std::string_view text, std::string_view source = "<string>") {
  csv_columns t;
  std::vector<std::string> fields;
  std::size_t line_no = 0;
  bool header = true;
  auto where = [&] {
    return "read_csv_columns: " + std::string(source) + ":" + std::to_string(line_no) + ": ";
  };
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") // a UTF-8 byte order mark (Excel writes one)
    text.remove_prefix(3);
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (detail::trim(line).empty())
      continue;
    if (!detail::split_csv_line(line, fields))
      throw io_error(where() + "a quoted field is not closed (a \" is missing)");
    if (header) {
      for (const auto& f : fields)
        if (f.empty())
          throw io_error(where() + "the header has an empty column name");
      t.names = fields;
      t.columns.assign(fields.size(), {});
      header = false;
      continue;
    }
    if (fields.size() != t.names.size())
      throw io_error(where() + "expected " + std::to_string(t.names.size()) +
                     " fields, as in the header, found " + std::to_string(fields.size()));
    for (std::size_t c = 0; c < fields.size(); ++c) {
      double v = 0;
      if (!detail::parse_double(fields[c], v))
        throw io_error(
            where() +
            (fields[c].empty() ? std::string("missing value") : "\"" + fields[c] + "\" is not a number") +
            " in column \"" + t.names[c] + "\" (field " + std::to_string(c + 1) + ")");
      t.columns[c].push_back(v);
    }
  }
  if (header)
    throw io_error("read_csv_columns: " + std::string(source) + ": the file is empty (no header row)");
  return t;
}

/// Reads a CSV file with a header row and numeric values (e.g. `YEAR,SUNACTIVITY`) column by column.
/// Throws io_error naming the file and the line on a missing file or a malformed line.
inline csv_columns read_csv_columns(const std::filesystem::path& file) {
  return parse_csv_columns(read_file(file), file.string());
}

/// CSV text for equal-length columns under a header; throws value_error when the lengths differ.
template <std::floating_point T = double>
std::string format_csv(const std::vector<std::string>& names, const std::vector<std::vector<T>>& columns) {
  if (names.size() != columns.size())
    throw value_error("write_csv: " + std::to_string(names.size()) + " column names for " +
                      std::to_string(columns.size()) + " columns");
  for (std::size_t c = 1; c < columns.size(); ++c)
    if (columns[c].size() != columns[0].size())
      throw value_error("write_csv: column \"" + names[c] + "\" has " + std::to_string(columns[c].size()) +
                        " values, column \"" + names[0] + "\" " + std::to_string(columns[0].size()) +
                        "; all columns must have the same length");
  std::string out;
  for (std::size_t c = 0; c < names.size(); ++c) {
    // Appended piece by piece: `(c ? "," : "") + temporary` trips g++ 12's false -Wrestrict at -O3.
    if (c)
      out += ',';
    out += detail::quote_csv_field(names[c]);
  }
  out += '\n';
  const std::size_t rows = columns.empty() ? 0 : columns[0].size();
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < columns.size(); ++c) {
      if (c)
        out += ',';
      detail::append_number(out, columns[c][r]);
    }
    out += '\n';
  }
  return out;
}

/// Writes equal-length columns under a header as a CSV file, atomically (temporary file + rename).
/// Numbers are written in the shortest form that reads back exactly.
template <std::floating_point T = double>
void write_csv(const std::filesystem::path& file, const std::vector<std::string>& names,
               const std::vector<std::vector<T>>& columns) {
  write_file_atomic(file, format_csv(names, columns));
}

} // namespace grad::utils
