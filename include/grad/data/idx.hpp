#pragma once
/// @file data/idx.hpp
/// The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a big-endian header
/// (two zero bytes, a type byte, the number of dimensions, one 32-bit size per dimension) and the data.
/// Files may be gzip-compressed (needs GRAD_HAS_ZLIB). Every size is checked before it is used.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/core/shape.hpp"
#include "grad/core/tensor.hpp"
#include "grad/data/dataset.hpp"
#include "grad/data/file_reader.hpp"
#include "grad/io/dtype.hpp"

namespace grad::data {

/// The contents of an IDX file: element type, shape, and the data as little-endian bytes.
struct idx_data {
  io::dtype type = io::dtype::u8; ///< u8, i8, i16, i32, f32 or f64 (IDX type bytes 0x08-0x0E)
  shape_type shape;               ///< one extent per dimension
  std::vector<std::byte> bytes;   ///< numel(shape) elements, converted to little-endian

  /// The data as a tensor of T (values unchanged, e.g. 0-255 for pixels).
  template <element T = float>
  basic_tensor<T> to_tensor() const {
    auto a = grad::detail::empty_array<T>(shape);
    io::detail::convert_le<T>(bytes.data(), type, a.data(), a.size());
    return basic_tensor<T>(std::move(a));
  }
};

namespace detail {

inline std::string idx_error_prefix(const file_reader& r) {
  return io::detail::file_message("read_idx", r.path(), "");
}

inline io::dtype idx_type(unsigned char code, const file_reader& r) {
  switch (code) {
  case 0x08:
    return io::dtype::u8;
  case 0x09:
    return io::dtype::i8;
  case 0x0b:
    return io::dtype::i16;
  case 0x0c:
    return io::dtype::i32;
  case 0x0d:
    return io::dtype::f32;
  case 0x0e:
    return io::dtype::f64;
  default: {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%02x", code);
    throw io_error(idx_error_prefix(r) + "unknown data type byte " + buf +
                   " (IDX knows 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64)");
  }
  }
}

// Reverses the byte order of every element in place: IDX stores big-endian.
inline void idx_to_little_endian(std::vector<std::byte>& b, std::size_t size) {
  if (size == 1)
    return;
  for (std::size_t i = 0; i + size <= b.size(); i += size)
    std::reverse(b.begin() + static_cast<std::ptrdiff_t>(i),
                 b.begin() + static_cast<std::ptrdiff_t>(i + size));
}

} // namespace detail

/// Reads an IDX file (plain or gzip-compressed). Throws io_error naming the file and the problem:
/// a bad magic number, an unknown type byte, a truncated header or data, or trailing bytes.
inline idx_data read_idx(const std::filesystem::path& path) {
  detail::file_reader r(path, "read_idx");
  const std::string err = detail::idx_error_prefix(r);
  std::byte head[4];
  const std::size_t got = r.read(head, 4);
  if (got < 4)
    throw io_error(err + "truncated: the " + r.what() + " has " + std::to_string(got) +
                   " bytes, but an IDX file starts with a 4-byte magic number");
  if (head[0] != std::byte{0} || head[1] != std::byte{0}) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%02x %02x %02x %02x", std::to_integer<unsigned>(head[0]),
                  std::to_integer<unsigned>(head[1]), std::to_integer<unsigned>(head[2]),
                  std::to_integer<unsigned>(head[3]));
    throw io_error(err + "bad magic number " + buf +
                   ": an IDX file starts with two zero bytes (not an IDX file?)");
  }
  idx_data out;
  out.type = detail::idx_type(std::to_integer<unsigned char>(head[2]), r);
  const unsigned ndim = std::to_integer<unsigned>(head[3]);
  if (ndim == 0)
    throw io_error(err + "corrupted: the header declares 0 dimensions");
  std::byte dims[4 * 255];
  const std::size_t dgot = r.read(dims, 4 * ndim);
  if (dgot < 4 * ndim)
    throw io_error(err + "truncated: the header declares " + std::to_string(ndim) + " dimensions, but the " +
                   r.what() + " ends after " + std::to_string(4 + dgot) + " bytes");
  std::string described; // "60000 x 28 x 28"
  for (unsigned i = 0; i < ndim; ++i) {
    out.shape.push_back(io::detail::load_be<std::uint32_t>(dims + 4 * i));
    described += (i ? " x " : "") + std::to_string(out.shape.back());
  }
  const std::size_t elem = io::dtype_size(out.type);
  if (elem > 1)
    described += " x " + std::to_string(elem) + "-byte elements";
  const auto expected = io::detail::checked_nbytes(out.shape, out.type);
  if (!expected)
    throw io_error(err + "corrupted: the header declares " + described + ", which overflows");
  detail::read_rest(r, out.bytes, *expected);
  if (out.bytes.size() < *expected)
    throw io_error(err + "truncated: header says " + described + " = " + std::to_string(*expected) +
                   " bytes, " + r.what() + " has " + std::to_string(out.bytes.size()));
  std::byte extra[1];
  if (r.read(extra, 1) != 0)
    throw io_error(err + "corrupted: the " + r.what() + " goes on after the " + std::to_string(*expected) +
                   " bytes of data the header declares (" + described + ")");
  detail::idx_to_little_endian(out.bytes, elem);
  return out;
}

/// Which part of a dataset to load.
enum class split { train, test };

/// Options of load_mnist / load_fashion_mnist.
struct mnist_options {
  bool flatten = false; ///< images as (N, 784) instead of (N, 1, 28, 28)
};

/// MNIST-style data: images scaled to [0, 1] and class labels (as exact values of T, see dataset.hpp).
template <element T = float>
struct mnist_data {
  basic_tensor<T> images; ///< (N, 1, 28, 28), or (N, 784) with flatten
  basic_tensor<T> labels; ///< (N,) class indices 0-9

  /// The images and labels as a tensor_dataset, ready for a data_loader.
  tensor_dataset<T> dataset() const { return tensor_dataset<T>(images, labels); }
};

/// The class names of Fashion-MNIST, by label.
inline constexpr std::array<std::string_view, 10> fashion_mnist_classes = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

namespace detail {

inline std::filesystem::path find_mnist_file(const std::filesystem::path& dir, std::string_view prefix,
                                             std::string_view kind, std::string_view who) {
  const std::string names[] = {std::string(prefix) + "-" + std::string(kind) + "-ubyte",
                               std::string(prefix) + "-" + std::string(kind) + "-ubyte.gz",
                               std::string(prefix) + "-" + std::string(kind.substr(0, kind.find('-'))) + "." +
                                   std::string(kind.substr(kind.find('-') + 1)) + "-ubyte"};
  std::string tried;
  for (const auto& n : names) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(dir / n, ec))
      return dir / n;
    tried += (tried.empty() ? "" : ", ") + n;
  }
  throw io_error(std::string(who) + ": no " + std::string(kind) + " file in '" + dir.string() + "' (tried " +
                 tried + ")");
}

template <element T>
mnist_data<T> load_mnist(const std::filesystem::path& dir, split s, mnist_options opt, std::string_view who) {
  const std::string_view prefix = s == split::train ? "train" : "t10k";
  const auto img_path = detail::find_mnist_file(dir, prefix, "images-idx3", who);
  const auto lbl_path = detail::find_mnist_file(dir, prefix, "labels-idx1", who);
  const idx_data img = read_idx(img_path);
  const idx_data lbl = read_idx(lbl_path);
  if (img.type != io::dtype::u8 || img.shape.size() != 3)
    throw io_error(io::detail::file_message(who, img_path,
                                            "expected u8 images of shape (N, rows, cols), got " +
                                                std::string(io::dtype_name(img.type)) + " " +
                                                to_string(img.shape)));
  if (lbl.type != io::dtype::u8 || lbl.shape.size() != 1)
    throw io_error(io::detail::file_message(who, lbl_path,
                                            "expected u8 labels of shape (N,), got " +
                                                std::string(io::dtype_name(lbl.type)) + " " +
                                                to_string(lbl.shape)));
  const std::size_t n = img.shape[0];
  if (lbl.shape[0] != n)
    throw io_error(io::detail::file_message(who, lbl_path,
                                            std::to_string(lbl.shape[0]) + " labels for " +
                                                std::to_string(n) + " images in '" + img_path.string() +
                                                "'"));
  const std::size_t pixels = img.shape[1] * img.shape[2];
  const shape_type shape = opt.flatten ? shape_type{n, pixels} : shape_type{n, 1, img.shape[1], img.shape[2]};
  auto images = grad::detail::empty_array<T>(shape);
  const auto* src = reinterpret_cast<const unsigned char*>(img.bytes.data());
  T* dst = images.data();
  std::array<T, 256> scaled; // v / 255 as torchvision's ToTensor divides: the same floats, by table lookup
  for (unsigned v = 0; v < 256; ++v)
    scaled[v] = static_cast<T>(v) / T(255);
  for (std::size_t i = 0, total = images.size(); i < total; ++i)
    dst[i] = scaled[src[i]];
  auto labels = grad::detail::empty_array<T>(shape_type{n});
  const auto* lsrc = reinterpret_cast<const unsigned char*>(lbl.bytes.data());
  for (std::size_t i = 0; i < n; ++i) {
    if (lsrc[i] > 9)
      throw io_error(io::detail::file_message(who, lbl_path,
                                              "label " + std::to_string(lsrc[i]) + " at index " +
                                                  std::to_string(i) + " is not a class 0-9"));
    labels.data()[i] = static_cast<T>(lsrc[i]);
  }
  return {basic_tensor<T>(std::move(images)), basic_tensor<T>(std::move(labels))};
}

} // namespace detail

/// Loads the MNIST-format files of `dir` (train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz],
/// or t10k-* for the test split). Pixels are divided by 255; labels must be 0-9.
template <element T = float>
mnist_data<T> load_mnist(const std::filesystem::path& dir, split s, mnist_options opt = {}) {
  return detail::load_mnist<T>(dir, s, opt, "load_mnist");
}

/// Loads Fashion-MNIST from `dir` (same files as MNIST; Debian's dataset-fashion-mnist package installs
/// them in /usr/share/datasets/fashion-mnist, gzip-compressed). Class names: fashion_mnist_classes.
template <element T = float>
mnist_data<T> load_fashion_mnist(const std::filesystem::path& dir, split s, mnist_options opt = {}) {
  return detail::load_mnist<T>(dir, s, opt, "load_fashion_mnist");
}

} // namespace grad::data
