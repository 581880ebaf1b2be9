#pragma once
/// @file data/file_reader.hpp
/// Sequential reading of a data file that may be gzip-compressed. Compression is detected by the
/// magic bytes 1f 8b, not by the extension. Decompression needs zlib (GRAD_HAS_ZLIB, see data/gzip.hpp);
/// without it a compressed file throws an io_error that says so.

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "grad/core/error.hpp"
#include "grad/io/file.hpp"

#if defined(GRAD_HAS_ZLIB) && GRAD_HAS_ZLIB
#include "grad/data/gzip.hpp"
#endif

namespace grad::data {

/// True when this build of grad can read `.gz` files (it was compiled with GRAD_HAS_ZLIB).
inline constexpr bool has_zlib =
#if defined(GRAD_HAS_ZLIB) && GRAD_HAS_ZLIB
    true;
#else
    false;
#endif

namespace detail {

/// Reads a plain or gzip-compressed file front to back.
class file_reader {
public:
  /// Opens `path`; `who` names the caller in errors.
  file_reader(const std::filesystem::path& path, std::string_view who) : file_(path, who), who_(who) {
    const auto b = file_.bytes();
    compressed_ = b.size() >= 2 && b[0] == std::byte{0x1f} && b[1] == std::byte{0x8b};
    if (compressed_) {
#if defined(GRAD_HAS_ZLIB) && GRAD_HAS_ZLIB
      gz_ = std::make_unique<gzip_reader>(b, path, who);
#else
      throw io_error(io::detail::file_message(
          who, path,
          "is gzip-compressed, but grad was built without zlib; install zlib (zlib1g-dev) and "
          "reconfigure so GRAD_HAS_ZLIB is defined, or decompress the file with gunzip"));
#endif
    }
  }

  /// Reads up to `n` bytes into `dst`; returns fewer only at the end of the (decompressed) data.
  std::size_t read(void* dst, std::size_t n) {
#if defined(GRAD_HAS_ZLIB) && GRAD_HAS_ZLIB
    if (gz_)
      return gz_->read(dst, n);
#endif
    const auto b = file_.bytes();
    const std::size_t k = std::min(n, b.size() - pos_);
    if (k)
      std::memcpy(dst, b.data() + pos_, k);
    pos_ += k;
    return k;
  }

  /// True for a gzip-compressed file.
  bool compressed() const noexcept {
    return compressed_;
  }
  /// Bytes left for a plain file; the size recorded in the gzip trailer for a compressed one (a hint).
  std::size_t size_hint() const noexcept {
#if defined(GRAD_HAS_ZLIB) && GRAD_HAS_ZLIB
    if (gz_)
      return gz_->size_hint();
#endif
    return file_.size() - pos_;
  }
  /// The file's path.
  const std::filesystem::path& path() const noexcept {
    return file_.path();
  }
  /// "file" or "decompressed data": what sizes in messages refer to.
  const char* what() const noexcept {
    return compressed_ ? "decompressed data" : "file";
  }

private:
  io::detail::mapped_file file_;
  std::string who_;
  std::size_t pos_ = 0;
  bool compressed_ = false;
#if defined(GRAD_HAS_ZLIB) && GRAD_HAS_ZLIB
  std::unique_ptr<gzip_reader> gz_;
#endif
};

/// Appends what is left in `r` (at most `limit` bytes) to `out`, growing it as data arrives: a size
/// claimed by a corrupted file is never allocated up front.
template <class Buffer>
void read_rest(file_reader& r, Buffer& out, std::size_t limit = static_cast<std::size_t>(-1)) {
  constexpr std::size_t small = std::size_t{1} << 16;
  const std::size_t hint = std::min<std::size_t>(r.size_hint(), std::size_t{1} << 30);
  std::size_t step = std::max(hint, small);
  bool probe = true; // after `hint` bytes the data should end: check with a small read before growing
  for (;;) {
    const std::size_t old = out.size();
    const std::size_t want = std::min(step, limit - old);
    if (want == 0)
      return;
    out.resize(old + want);
    const std::size_t got = r.read(out.data() + old, want);
    out.resize(old + got);
    if (got < want)
      return;
    step = probe ? small : std::max(step, out.size()); // then double the buffer each time
    probe = false;
  }
}

/// The whole (decompressed) content of a file.
inline std::string read_all(const std::filesystem::path& path, std::string_view who) {
  file_reader r(path, who);
  std::string out;
  read_rest(r, out);
  return out;
}

} // namespace detail
} // namespace grad::data
