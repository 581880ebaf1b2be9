#pragma once
/// @file io/file.hpp
/// Reading whole files (memory-mapped on POSIX, read into memory elsewhere) and atomic writes
/// (a temporary file in the same directory, flushed to disk, then renamed over the target).

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "grad/core/error.hpp"

#if __has_include(<sys/mman.h>) && __has_include(<unistd.h>) && __has_include(<fcntl.h>)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define GRAD_IO_DETAIL_POSIX 1
#else
#define GRAD_IO_DETAIL_POSIX 0
#endif

namespace grad::io::detail {

/// `who: 'path': what` — the prefix of every file error, so messages always name the file.
inline std::string file_message(std::string_view who, const std::filesystem::path& path,
                                std::string_view what) {
  std::string m(who);
  m += ": '";
  m += path.string();
  m += "': ";
  m += what;
  return m;
}

/// The description of errno `e` ("No such file or directory").
inline std::string errno_text(int e) {
  return std::generic_category().message(e);
}

/// A whole file, read-only: memory-mapped on POSIX (no copy, pages loaded on demand), else read in.
class mapped_file {
public:
  /// Opens `path`; `who` names the caller in errors ("load_npy").
  mapped_file(const std::filesystem::path& path, std::string_view who) : path_(path) {
#if GRAD_IO_DETAIL_POSIX
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      throw io_error(file_message(who, path, "cannot open: " + errno_text(errno)));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      const int e = errno;
      ::close(fd);
      throw io_error(file_message(
          who, path, S_ISDIR(st.st_mode) ? "is a directory, not a file" : "cannot stat: " + errno_text(e)));
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) { // mmap of length 0 fails; an empty file is just an empty span
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int e = errno;
        ::close(fd);
        throw io_error(file_message(who, path, "cannot map into memory: " + errno_text(e)));
      }
      map_ = p;
#ifdef MADV_SEQUENTIAL
      ::madvise(map_, size_, MADV_SEQUENTIAL); // a hint: read-ahead for the front-to-back pass
#endif
    }
    ::close(fd); // the mapping stays valid without the descriptor
#else
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
      throw io_error(file_message(who, path, "is a directory, not a file"));
    std::FILE* f = std::fopen(path.string().c_str(), "rb");
    if (!f)
      throw io_error(file_message(who, path, "cannot open: " + errno_text(errno)));
    char chunk[1 << 16];
    std::size_t got;
    while ((got = std::fread(chunk, 1, sizeof chunk, f)) > 0)
      buffer_.insert(buffer_.end(), reinterpret_cast<std::byte*>(chunk),
                     reinterpret_cast<std::byte*>(chunk) + got);
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed)
      throw io_error(file_message(who, path, "read error"));
    size_ = buffer_.size();
#endif
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file() {
#if GRAD_IO_DETAIL_POSIX
    if (map_)
      ::munmap(map_, size_);
#endif
  }

  /// The file's bytes.
  std::span<const std::byte> bytes() const noexcept {
#if GRAD_IO_DETAIL_POSIX
    return {static_cast<const std::byte*>(map_), size_};
#else
    return {buffer_.data(), size_};
#endif
  }
  /// Size of the file in bytes.
  std::size_t size() const noexcept {
    return size_;
  }
  /// The path it was opened with.
  const std::filesystem::path& path() const noexcept {
    return path_;
  }

private:
  std::filesystem::path path_;
  std::size_t size_ = 0;
#if GRAD_IO_DETAIL_POSIX
  void* map_ = nullptr;
#else
  std::vector<std::byte> buffer_;
#endif
};

/// Buffered output to an open file; throws io_error naming the file on any failure.
class file_writer {
public:
  /// Wraps `f` (owned by the caller); `who` and `path` name the file in errors.
  file_writer(std::FILE* f, std::string_view who, const std::filesystem::path& path) noexcept
      : f_(f), who_(who), path_(path) {}
  /// Writes `n` bytes.
  void write(const void* p, std::size_t n) {
    if (n != 0 && std::fwrite(p, 1, n, f_) != n)
      throw io_error(file_message(who_, path_, "write failed: " + errno_text(errno)));
  }
  /// Writes a string's bytes.
  void write(std::string_view s) { write(s.data(), s.size()); }

private:
  std::FILE* f_;
  std::string_view who_;
  const std::filesystem::path& path_;
};

/// Writes `path` atomically: `fill(file_writer&)` writes into `path.tmp.<random>` in the same
/// directory, which is flushed to disk and renamed over `path`. On any failure the temporary file is
/// removed, an existing `path` is left untouched, and an io_error naming `path` is thrown.
template <class Fill>
void atomic_write(const std::filesystem::path& path, std::string_view who, Fill&& fill) {
  std::random_device rd; // unique names without global state; O_EXCL below guards against collisions
  std::filesystem::path tmp;
  std::FILE* f = nullptr;
  int open_errno = 0;
  for (int attempt = 0; attempt < 16 && !f; ++attempt) {
    char suffix[24];
    std::snprintf(suffix, sizeof suffix, ".tmp.%08x%08x", rd(), rd());
    tmp = path;
    tmp += suffix;
#if GRAD_IO_DETAIL_POSIX
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      f = ::fdopen(fd, "wb");
      if (!f) {
        open_errno = errno;
        ::close(fd);
        std::remove(tmp.c_str());
        break;
      }
    } else {
      open_errno = errno;
      if (open_errno != EEXIST)
        break;
    }
#else
    f = std::fopen(tmp.string().c_str(), "wbx"); // C11 exclusive mode
    if (!f)
      open_errno = errno;
#endif
  }
  if (!f)
    throw io_error(
        file_message(who, path, "cannot create a temporary file next to it: " + errno_text(open_errno)));

  auto fail = [&](const std::string& what) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw io_error(file_message(who, path, what));
  };
  try {
    file_writer w(f, who, path);
    fill(w);
  } catch (...) {
    std::fclose(f);
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
  bool ok = std::fflush(f) == 0;
  int e = ok ? 0 : errno;
#if GRAD_IO_DETAIL_POSIX
  if (ok && ::fsync(::fileno(f)) != 0) { // the data must be on disk before the rename publishes it
    ok = false;
    e = errno;
  }
#endif
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    e = errno;
  }
  if (!ok)
    fail("write failed: " + errno_text(e));
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec); // atomic replacement on POSIX; replaces on Windows too
  if (ec)
    fail("cannot rename the temporary file over it: " + ec.message());
#if GRAD_IO_DETAIL_POSIX
  // Make the rename itself durable; best effort, as not every file system supports it.
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
#endif
}

} // namespace grad::io::detail

#undef GRAD_IO_DETAIL_POSIX
