#pragma once
/// @file data/csv.hpp
/// Reading numeric CSV tables into a 2-d tensor: `read_csv("data.csv", {.header = true})`.
/// Cells may be quoted ("1.5", with "" for a quote inside); blank lines are skipped; a `.gz` file is
/// decompressed when grad has zlib. A cell that is not a number, or a row of the wrong length, throws
/// io_error naming the file, the line and the column.

#include <charconv>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/core/factories.hpp"
#include "grad/core/tensor.hpp"
#include "grad/data/file_reader.hpp"

namespace grad::data {

/// Options of read_csv.
struct csv_options {
  bool header = true;   ///< the first non-blank line holds the column names
  char delimiter = ','; ///< cell separator (e.g. ';' or '\t')
};

/// A numeric table: column names and the values as (rows, columns).
template <element T = float>
struct csv_table {
  std::vector<std::string> columns; ///< column names (empty without a header)
  basic_tensor<T> values;           ///< (rows, columns)
};

namespace detail {

// Splits one line into cells, unquoting "..." cells; `storage` owns unescaped text.
inline void split_csv_line(std::string_view line, char delim, std::vector<std::string_view>& cells,
                           std::vector<std::string>& storage, const std::string& file, std::size_t line_no) {
  auto where = [&] { return file + "line " + std::to_string(line_no); };
  cells.clear();
  storage.clear();
  storage.reserve(line.size()); // no reallocation: views into it stay valid
  std::size_t i = 0;
  for (;;) {
    while (i < line.size() && (line[i] == ' ' || (line[i] == '\t' && delim != '\t')))
      ++i;
    if (i < line.size() && line[i] == '"') {
      std::string cell;
      bool closed = false;
      for (++i; i < line.size(); ++i) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            cell += '"';
            ++i;
          } else {
            closed = true;
            ++i;
            break;
          }
        } else {
          cell += line[i];
        }
      }
      if (!closed)
        throw io_error(where() + ", column " + std::to_string(cells.size() + 1) +
                       ": unterminated quoted cell");
      while (i < line.size() && (line[i] == ' ' || (line[i] == '\t' && delim != '\t')))
        ++i;
      if (i < line.size() && line[i] != delim)
        throw io_error(where() + ", column " + std::to_string(cells.size() + 1) +
                       ": unexpected text after a quoted cell");
      storage.push_back(std::move(cell));
      cells.emplace_back(storage.back());
    } else {
      const std::size_t start = i;
      while (i < line.size() && line[i] != delim)
        ++i;
      std::size_t end = i;
      while (end > start && (line[end - 1] == ' ' || (line[end - 1] == '\t' && delim != '\t')))
        --end;
      cells.push_back(line.substr(start, end - start));
    }
    if (i >= line.size())
      return;
    ++i; // the delimiter
  }
}

enum class cell_status { ok, empty, out_of_range, invalid };

template <element T>
cell_status parse_csv_number(std::string_view cell, T& v) {
  if (cell.empty())
    return cell_status::empty;
  if (cell[0] == '+') // from_chars does not take a leading '+'
    cell.remove_prefix(1);
  auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v);
  if (ec == std::errc::result_out_of_range)
    return cell_status::out_of_range;
  if (ec != std::errc() || end != cell.data() + cell.size())
    return cell_status::invalid;
  return cell_status::ok;
}

} // namespace detail

/// Reads a CSV file of numbers into a (rows, columns) tensor of T, with the header's column names.
template <element T = float>
csv_table<T> read_csv(const std::filesystem::path& path, const csv_options& opt = {}) {
  const std::string text = detail::read_all(path, "read_csv");
  const std::string file = io::detail::file_message("read_csv", path, "");
  csv_table<T> table;
  std::vector<T> values;
  std::vector<std::string_view> cells;
  std::vector<std::string> storage;
  std::size_t cols = 0, rows = 0, first_line = 0;
  bool have_width = false;
  std::size_t pos = 0, line_no = 0;
  if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0)
    pos = 3; // a UTF-8 byte order mark, as spreadsheet programs write
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos)
      nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos)
      continue; // blank line
    detail::split_csv_line(line, opt.delimiter, cells, storage, file, line_no);
    if (!have_width) {
      cols = cells.size();
      first_line = line_no;
      have_width = true;
      if (opt.header) {
        for (auto c : cells)
          table.columns.emplace_back(c);
        continue;
      }
    } else if (cells.size() != cols) {
      throw io_error(file + "line " + std::to_string(line_no) + ": " + std::to_string(cells.size()) +
                     " columns, expected " + std::to_string(cols) + " (as on line " +
                     std::to_string(first_line) + ")");
    }
    for (std::size_t c = 0; c < cells.size(); ++c) {
      T v{};
      const auto st = detail::parse_csv_number<T>(cells[c], v);
      if (st != detail::cell_status::ok) {
        std::string at = file + "line " + std::to_string(line_no) + ", column " + std::to_string(c + 1);
        if (c < table.columns.size())
          at += " ('" + table.columns[c] + "')";
        throw io_error(at + (st == detail::cell_status::empty ? ": empty cell, expected a number"
                             : st == detail::cell_status::out_of_range
                                 ? ": '" + std::string(cells[c]) + "' is out of the range of the element type"
                                 : ": cannot parse '" + std::string(cells[c]) + "' as a number"));
      }
      values.push_back(v);
    }
    ++rows;
  }
  table.values = from<T>(values, shape_type{rows, cols});
  return table;
}

} // namespace grad::data
