#pragma once
/// @file data/gzip.hpp
/// Streaming gzip decompression with zlib, for `.gz` datasets. Included (by data/file_reader.hpp)
/// only when GRAD_HAS_ZLIB is defined, which grad's CMake package does, together with linking
/// ZLIB::ZLIB, when zlib is found. Define it the same way in every translation unit of a program.

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include <zlib.h>

#include "grad/core/error.hpp"
#include "grad/io/dtype.hpp"
#include "grad/io/file.hpp"

namespace grad::data::detail {

/// Decompresses a whole gzip file held in memory, a piece at a time (concatenated members included).
class gzip_reader {
public:
  /// Starts decompressing `in` (the bytes of `path`, which start with the gzip magic 1f 8b).
  gzip_reader(std::span<const std::byte> in, const std::filesystem::path& path, std::string_view who)
      : in_(in), path_(path), who_(who) {
    // 16 + MAX_WBITS: expect the gzip wrapper (header and CRC-32 trailer), not raw zlib data.
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK)
      throw io_error(io::detail::file_message(who_, path_, "cannot initialise zlib"));
  }
  gzip_reader(const gzip_reader&) = delete;
  gzip_reader& operator=(const gzip_reader&) = delete;
  ~gzip_reader() { inflateEnd(&z_); }

  /// Decompresses up to `n` bytes into `dst`; returns fewer only at the end of the data.
  /// Throws io_error for corrupted or truncated compressed data.
  std::size_t read(void* dst, std::size_t n) {
    auto* out = static_cast<unsigned char*>(dst);
    std::size_t got = 0;
    while (got < n && !done_) {
      if (z_.avail_in == 0 && pos_ < in_.size()) { // avail_in is 32-bit: feed big files in pieces
        const std::size_t chunk = std::min<std::size_t>(in_.size() - pos_, std::size_t{1} << 30);
        z_.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in_.data() + pos_));
        z_.avail_in = static_cast<uInt>(chunk);
        pos_ += chunk;
      }
      const std::size_t want = std::min<std::size_t>(n - got, std::size_t{1} << 30);
      z_.next_out = out + got;
      z_.avail_out = static_cast<uInt>(want);
      const int rc = inflate(&z_, Z_NO_FLUSH);
      got += want - z_.avail_out;
      if (rc == Z_STREAM_END) {
        const std::size_t at = pos_ - z_.avail_in; // first byte after this gzip member
        if (at == in_.size())
          done_ = true;
        else if (in_.size() - at >= 2 && in_[at] == std::byte{0x1f} && in_[at + 1] == std::byte{0x8b})
          inflateReset(&z_); // another member follows (as `cat a.gz b.gz` makes)
        else
          fail("corrupted: " + std::to_string(in_.size() - at) + " bytes of garbage after the gzip data");
      } else if (rc == Z_BUF_ERROR) {
        if (z_.avail_in == 0 && pos_ == in_.size())
          fail("truncated: the gzip data ends unexpectedly");
      } else if (rc != Z_OK) {
        fail(std::string("corrupted gzip data: ") + (z_.msg ? z_.msg : "zlib error " + std::to_string(rc)));
      }
    }
    return got;
  }

  /// The uncompressed size recorded in the gzip trailer (modulo 2^32), capped by deflate's best
  /// ratio (about 1032:1) so a corrupted trailer cannot ask for a huge buffer. A hint only.
  std::size_t size_hint() const noexcept {
    if (in_.size() < 18)
      return 0;
    const std::size_t isize = io::detail::load_le<std::uint32_t>(in_.data() + in_.size() - 4);
    return std::min(isize, in_.size() * 1032);
  }

private:
  [[noreturn]] void fail(const std::string& what) const {
    throw io_error(io::detail::file_message(who_, path_, what));
  }

  z_stream z_{};
  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
  bool done_ = false;
  std::filesystem::path path_;
  std::string who_;
};

} // namespace grad::data::detail
