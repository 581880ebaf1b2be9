#pragma once
/// @file utils/file.hpp
/// Atomic file writes: the contents go to a temporary file beside the target, which is then renamed
/// over it, so a crash mid-write never leaves a half-written file (DESIGN.md section 7).

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include "grad/core/error.hpp"

namespace grad::utils {
namespace detail {

/// A fresh name beside `target` (same directory, so the rename stays on one file system).
inline std::filesystem::path temp_path_for(const std::filesystem::path& target) {
  // random_device alone may be deterministic on some platforms: mixing in the clock and the thread
  // keeps two writers (threads or processes) from picking the same name, without global state.
  std::uint64_t x = std::random_device{}();
  x ^= static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  x ^= static_cast<std::uint64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id())) *
       0x9e3779b97f4a7c15ULL;
  char suffix[24];
  std::snprintf(suffix, sizeof suffix, ".tmp.%016llx", static_cast<unsigned long long>(x));
  std::filesystem::path p = target;
  p += suffix;
  return p;
}

} // namespace detail

/// Writes `contents` to `file` atomically (temporary file + rename); throws io_error naming the file.
inline void write_file_atomic(const std::filesystem::path& file, std::string_view contents) {
  const std::filesystem::path tmp = detail::temp_path_for(file);
  auto fail = [&](const std::string& what) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    return io_error("write " + file.string() + ": " + what);
  };
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      throw fail("cannot create the temporary file " + tmp.string() +
                 " (does the directory exist and is it "
                 "writable?)");
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    if (!out)
      throw fail("writing the temporary file " + tmp.string() + " failed (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, file, ec);
  if (ec)
    throw fail("cannot rename " + tmp.string() + " to it: " + ec.message());
}

/// Reads a whole file into a string; throws io_error naming the file when it cannot be read.
inline std::string read_file(const std::filesystem::path& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec))
    throw io_error("read " + file.string() + ": is a directory, not a file");
  std::ifstream in(file, std::ios::binary);
  if (!in)
    throw io_error("read " + file.string() + ": cannot open the file (does it exist?)");
  std::string s;
  in.seekg(0, std::ios::end);
  const auto size = in.tellg();
  if (size > 0) {
    s.resize(static_cast<std::size_t>(size));
    in.seekg(0, std::ios::beg);
    in.read(s.data(), size);
  }
  if (in.bad() || (size > 0 && !in))
    throw io_error("read " + file.string() + ": reading failed");
  return s;
}

} // namespace grad::utils
