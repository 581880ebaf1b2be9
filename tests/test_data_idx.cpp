// Tests of grad/data/idx.hpp: IDX files (plain and gzip), MNIST-style loading, and Fashion-MNIST
// itself when Debian's dataset-fashion-mnist package is installed.

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "grad/data/data_loader.hpp"
#include "grad/data/idx.hpp"

#if defined(GRAD_HAS_ZLIB) && GRAD_HAS_ZLIB
#include <zlib.h>
#endif

namespace fs = std::filesystem;
namespace data = grad::data;

namespace {

struct scratch_dir {
  fs::path path;
  scratch_dir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("grad_test_idx_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path operator/(const std::string& name) const { return path / name; }
};

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string io_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const grad::io_error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>((v >> 16) & 0xff), static_cast<char>((v >> 8) & 0xff),
          static_cast<char>(v & 0xff)};
}

// An IDX file: magic (0, 0, type, ndim), big-endian dims, then `payload` as given.
std::string idx(unsigned char type, const std::vector<std::uint32_t>& dims, const std::string& payload) {
  std::string s{'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (auto d : dims)
    s += be32(d);
  return s + payload;
}

std::string iota_bytes(std::size_t n, int start = 0) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i)
    s += static_cast<char>((start + static_cast<int>(i)) & 0xff);
  return s;
}

#if defined(GRAD_HAS_ZLIB) && GRAD_HAS_ZLIB
std::string gzip(const std::string& in) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, static_cast<uLong>(in.size())) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}
#endif

// A tiny MNIST-style directory: `n` images of 2 x 3 pixels and their labels.
void write_mnist(const fs::path& dir, const std::string& prefix, std::size_t n, bool gz,
                 const std::string& labels_payload = "") {
  std::string pix;
  for (std::size_t i = 0; i < n * 6; ++i)
    pix += static_cast<char>(i % 2 ? 255 : (i * 10) & 0xff);
  std::string lbl = labels_payload;
  if (lbl.empty())
    for (std::size_t i = 0; i < n; ++i)
      lbl += static_cast<char>(i % 10);
  std::string images = idx(0x08, {static_cast<std::uint32_t>(n), 2, 3}, pix);
  std::string labels = idx(0x08, {static_cast<std::uint32_t>(lbl.size())}, lbl);
  std::string ext;
#if defined(GRAD_HAS_ZLIB) && GRAD_HAS_ZLIB
  if (gz) {
    images = gzip(images);
    labels = gzip(labels);
    ext = ".gz";
  }
#else
  (void)gz;
#endif
  write_file(dir / (prefix + "-images-idx3-ubyte" + ext), images);
  write_file(dir / (prefix + "-labels-idx1-ubyte" + ext), labels);
}

} // namespace

TEST_CASE("read_idx: a hand-made u8 file") {
  scratch_dir dir;
  write_file(dir / "a.idx", idx(0x08, {2, 3, 2}, iota_bytes(12, 250)));
  const auto d = data::read_idx(dir / "a.idx");
  CHECK(d.type == grad::io::dtype::u8);
  CHECK(d.shape == grad::shape_type{2, 3, 2});
  REQUIRE(d.bytes.size() == 12);
  const auto t = d.to_tensor<float>();
  CHECK(t.shape() == grad::shape_type{2, 3, 2});
  CHECK(t.value()(0, 0, 0) == 250.0f);
  CHECK(t.value()(0, 2, 1) == 255.0f);
  CHECK(t.value()(1, 0, 0) == 0.0f); // wrapped around
  CHECK(t.value()(1, 2, 1) == 5.0f);
}

TEST_CASE("read_idx: big-endian i8, i16, i32, f32 and f64 elements") {
  scratch_dir dir;
  write_file(dir / "i8", idx(0x09, {2}, std::string("\xff\x7f", 2)));
  CHECK(data::read_idx(dir / "i8").to_tensor<float>().value()(0) == -1.0f);
  write_file(dir / "i16", idx(0x0b, {2}, std::string("\xff\xfe\x01\x2c", 4)));
  const auto i16 = data::read_idx(dir / "i16").to_tensor<double>();
  CHECK(i16.value()(0) == -2.0);
  CHECK(i16.value()(1) == 300.0);
  write_file(dir / "i32", idx(0x0c, {1, 1}, std::string("\xff\xfe\xee\x90", 4)));
  CHECK(data::read_idx(dir / "i32").to_tensor<double>().value()(0, 0) == -70000.0);
  write_file(dir / "f32", idx(0x0d, {1}, std::string("\x3f\xc0\x00\x00", 4)));
  CHECK(data::read_idx(dir / "f32").to_tensor<float>().value()(0) == 1.5f);
  write_file(dir / "f64", idx(0x0e, {1}, std::string("\xbf\xd0\x00\x00\x00\x00\x00\x00", 8)));
  CHECK(data::read_idx(dir / "f64").to_tensor<double>().value()(0) == -0.25);
}

TEST_CASE("read_idx: truncated and corrupted files throw io_error naming the file and the problem") {
  scratch_dir dir;
  const auto p = dir / "bad-idx3-ubyte";
  auto error_for = [&](const std::string& bytes) {
    write_file(p, bytes);
    const std::string e = io_error_of([&] { (void)data::read_idx(p); });
    CHECK_MESSAGE(contains(e, p.string()), e);
    return e;
  };
  CHECK(contains(error_for(""), "truncated: the file has 0 bytes"));
  CHECK(contains(error_for(std::string("\0\0", 2)), "truncated: the file has 2 bytes"));
  CHECK(contains(error_for("\x01\x02\x08\x01"), "bad magic number 01 02 08 01"));
  CHECK(contains(error_for(std::string("\0\0\x0a\x01", 4) + be32(1) + "x"), "unknown data type byte 0x0a"));
  CHECK(contains(error_for(std::string("\0\0\x08\0", 4)), "0 dimensions"));
  CHECK(contains(error_for(std::string("\0\0\x08\x03", 4) + be32(2) + be32(3)),
                 "truncated: the header declares 3 dimensions, but the file ends after 12 bytes"));
  CHECK(contains(error_for(idx(0x08, {60000, 28, 28}, std::string(1000, 'x'))),
                 "truncated: header says 60000 x 28 x 28 = 47040000 bytes, file has 1000"));
  CHECK(contains(error_for(idx(0x0c, {2}, "1234")), "header says 2 x 4-byte elements = 8 bytes, file has 4"));
  CHECK(contains(error_for(idx(0x08, {2, 3}, iota_bytes(7))),
                 "corrupted: the file goes on after the 6 bytes of data the header declares (2 x 3)"));
  CHECK(contains(error_for(idx(0x08, {0xffffffff, 0xffffffff, 0xffffffff}, "")), "which overflows"));
  // A huge but representable claim is not allocated up front: it fails as truncated.
  CHECK(contains(error_for(idx(0x08, {0xffffffff, 0xffffffff}, "abc")), "file has 3"));
  // Every truncation of a valid file throws.
  const std::string good = idx(0x08, {2, 3, 2}, iota_bytes(12));
  for (std::size_t n = 0; n < good.size(); ++n)
    CHECK(!error_for(good.substr(0, n)).empty());
  CHECK(contains(io_error_of([&] { (void)data::read_idx(dir / "missing"); }), "cannot open"));
}

TEST_CASE("read_idx: gzip-compressed files are detected by their magic bytes") {
  scratch_dir dir;
  const std::string plain = idx(0x08, {2, 3, 2}, iota_bytes(12, 100));
#if defined(GRAD_HAS_ZLIB) && GRAD_HAS_ZLIB
  CHECK(data::has_zlib);
  const std::string gz = gzip(plain);
  write_file(dir / "a.gz", gz);
  write_file(dir / "no-extension", gz); // the magic bytes decide, not the name
  for (const char* name : {"a.gz", "no-extension"}) {
    const auto d = data::read_idx(dir / name);
    CHECK(d.shape == grad::shape_type{2, 3, 2});
    CHECK(std::memcmp(d.bytes.data(), plain.data() + 16, 12) == 0);
  }
  // Concatenated gzip members form one stream (as `cat a.gz b.gz` makes).
  write_file(dir / "multi.gz", gzip(plain.substr(0, 10)) + gzip(plain.substr(10)));
  CHECK(data::read_idx(dir / "multi.gz").to_tensor<float>().value()(1, 2, 1) == 111.0f);

  const auto p = dir / "bad.gz";
  auto error_for = [&](const std::string& bytes) {
    write_file(p, bytes);
    const std::string e = io_error_of([&] { (void)data::read_idx(p); });
    CHECK_MESSAGE(contains(e, p.string()), e);
    return e;
  };
  CHECK(contains(error_for(gz.substr(0, gz.size() - 4)), "truncated: the gzip data ends unexpectedly"));
  CHECK(contains(error_for(gz + "garbage"), "bytes of garbage after the gzip data"));
  std::string flipped = gz;
  flipped[gz.size() - 6] = static_cast<char>(flipped[gz.size() - 6] ^ 0x55); // inside the CRC-32
  CHECK(contains(error_for(flipped), "corrupted gzip data"));
  CHECK(contains(error_for(gzip(idx(0x08, {60000, 28, 28}, std::string(1000, 'x')))),
                 "truncated: header says 60000 x 28 x 28 = 47040000 bytes, decompressed data has 1000"));
  CHECK(contains(error_for(gzip(plain + "x")), "decompressed data goes on after the 12 bytes"));
  for (std::size_t n = 2; n < gz.size(); ++n) // never a crash, whatever the cut
    CHECK(!error_for(gz.substr(0, n)).empty());
  std::mt19937 rng(3);
  for (int trial = 0; trial < 300; ++trial) {
    std::string b = gz;
    b[10 + rng() % (b.size() - 10)] = static_cast<char>(rng() & 0xff);
    write_file(p, b);
    try {
      (void)data::read_idx(p);
    } catch (const grad::io_error&) {
    }
  }
#else
  CHECK_FALSE(data::has_zlib);
  write_file(dir / "a.gz", std::string("\x1f\x8b\x08\x00", 4) + plain);
  CHECK(contains(io_error_of([&] { (void)data::read_idx(dir / "a.gz"); }), "grad was built without zlib"));
#endif
}

TEST_CASE("load_mnist: a tiny hand-made dataset, both layouts, and its checks") {
  scratch_dir dir;
  write_mnist(dir.path, "train", 5, false);
  write_mnist(dir.path, "t10k", 3, data::has_zlib);
  const auto train = data::load_mnist(dir.path, data::split::train);
  CHECK(train.images.shape() == grad::shape_type{5, 1, 2, 3});
  CHECK(train.labels.shape() == grad::shape_type{5});
  CHECK(train.images.value()(0, 0, 0, 1) == 1.0f);
  CHECK(train.images.value()(0, 0, 0, 2) == 20.0f / 255.0f);
  CHECK(train.labels.value()(4) == 4.0f);
  const auto test = data::load_mnist<double>(dir.path, data::split::test, {.flatten = true});
  CHECK(test.images.shape() == grad::shape_type{3, 6});
  CHECK(test.images.value()(2, 4) == 160.0 / 255.0);
  const auto ds = test.dataset();
  CHECK(ds.size() == 3);

  scratch_dir bad;
  CHECK(
      contains(io_error_of([&] { (void)data::load_mnist(bad.path, data::split::train); }),
               "no images-idx3 file in '" + bad.path.string() +
                   "' (tried train-images-idx3-ubyte, train-images-idx3-ubyte.gz, train-images.idx3-ubyte)"));
  write_mnist(bad.path, "train", 3, false, std::string("\x01\x0c\x02", 3));
  CHECK(contains(io_error_of([&] { (void)data::load_fashion_mnist(bad.path, data::split::train); }),
                 "load_fashion_mnist: '" + (bad / "train-labels-idx1-ubyte").string() +
                     "': label 12 at index 1 is not a class 0-9"));
  write_mnist(bad.path, "train", 3, false, std::string("\x01\x02", 2));
  CHECK(contains(io_error_of([&] { (void)data::load_mnist(bad.path, data::split::train); }),
                 "2 labels for 3 images"));
  write_file(bad / "train-images-idx3-ubyte", idx(0x08, {3, 6}, iota_bytes(18)));
  CHECK(contains(io_error_of([&] { (void)data::load_mnist(bad.path, data::split::train); }),
                 "expected u8 images of shape (N, rows, cols), got U8 (3, 6)"));
}

namespace {
const fs::path fashion_dir = "/usr/share/datasets/fashion-mnist";

bool fashion_available() {
  std::error_code ec;
  if (!fs::is_directory(fashion_dir, ec)) {
    MESSAGE("SKIPPED: " << fashion_dir.string()
                        << " is missing (apt-get install dataset-fashion-mnist; CI installs it)");
    return false;
  }
  if (!data::has_zlib) {
    MESSAGE("SKIPPED: Fashion-MNIST is gzip-compressed and grad was built without zlib");
    return false;
  }
  return true;
}
} // namespace

TEST_CASE("Fashion-MNIST test set (when installed)") {
  if (!fashion_available())
    return;
  const auto t0 = std::chrono::steady_clock::now();
  const auto test = data::load_fashion_mnist(fashion_dir, data::split::test);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("loaded the Fashion-MNIST test set in " << ms << " ms");
  CHECK(test.images.shape() == grad::shape_type{10000, 1, 28, 28});
  CHECK(test.labels.shape() == grad::shape_type{10000});
  std::array<int, 10> count{};
  const grad::index_tensor labels = data::class_indices(test.labels, 10); // a named object: a range-for over
  for (auto i : labels.values())                                          // a temporary's member dangles
    ++count[static_cast<std::size_t>(i)];
  CHECK(count == std::array<int, 10>{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000});
  const float* px = test.images.data();
  const auto [lo, hi] = std::minmax_element(px, px + test.images.numel());
  CHECK(*lo == 0.0f);
  CHECK(*hi == 1.0f);
  CHECK(data::fashion_mnist_classes[9] == "Ankle boot");
}

TEST_CASE("Fashion-MNIST training set loads fast and batches (when installed)") {
  if (!fashion_available())
    return;
  const auto t0 = std::chrono::steady_clock::now();
  const auto train = data::load_fashion_mnist(fashion_dir, data::split::train, {.flatten = true});
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("loaded the Fashion-MNIST training set (60000 x 784) in " << ms << " ms");
  CHECK(train.images.shape() == grad::shape_type{60000, 784});
  // --- snippet (docs/data.md): Fashion-MNIST
  auto fashion =
      grad::data::load_fashion_mnist("/usr/share/datasets/fashion-mnist", grad::data::split::train);
  grad::data::data_loader loader(fashion.dataset(), {.batch_size = 128, .shuffle = true, .seed = 1});
  for (const auto& [images, labels] : loader) {
    // images: (128, 1, 28, 28) in [0, 1]; labels: (128,) class indices 0-9
    auto targets = grad::data::class_indices(labels, 10); // grad::index_tensor for cross_entropy
    (void)targets;
    break;
  }
  // --- end snippet
  CHECK(loader.size() == 469);
  const auto t1 = std::chrono::steady_clock::now();
  std::size_t seen = 0;
  for (const auto& b : loader)
    seen += b.inputs.size(0);
  const double epoch_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();
  MESSAGE("one shuffled epoch of batches of 128 gathered in " << epoch_ms << " ms");
  CHECK(seen == 60000);
}
