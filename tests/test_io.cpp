// Tests of grad/io: safetensors (save/load, the low-level reader and writer, validation of hostile
// files), npy, and atomic writes.

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "grad/core/factories.hpp"
#include "grad/io/npy.hpp"
#include "grad/io/safetensors.hpp"

namespace fs = std::filesystem;
namespace io = grad::io;

namespace {

// A fresh directory per test case (CTest runs cases as parallel processes), removed afterwards.
struct scratch_dir {
  fs::path path;
  scratch_dir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("grad_test_io_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path operator/(const std::string& name) const { return path / name; }
  std::vector<std::string> files() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path))
      names.push_back(e.path().filename().string());
    return names;
  }
};

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string le64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i)
    s[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// A safetensors file from a header (JSON text) and a data buffer.
std::string st_bytes(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

// The io_error message of f(), or "" when it does not throw one.
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

struct tiny_net {
  grad::tensor w = grad::zeros<float>({2, 3});
  grad::tensor b = grad::zeros<float>({3});
  io::named_tensors<float> named_parameters() const { return {{"fc.weight", w}, {"fc.bias", b}}; }
};
static_assert(io::has_named_parameters<tiny_net>);
static_assert(!io::has_named_parameters<int>);

} // namespace

TEST_CASE("safetensors round trip: float and double, 0-d and empty shapes, metadata") {
  scratch_dir dir;
  const auto path = dir / "t.safetensors";
  const io::named_tensors<float> f = {{"a", grad::from<float>({1, 2, 3, 4, 5, 6}, {2, 3})},
                                      {"scalar", grad::scalar_tensor<float>(-7.5f)},
                                      {"empty", grad::zeros<float>({0, 4})},
                                      {"odd \"name\"/é", grad::from<float>({1e-30f, -0.0f, 3e38f})}};
  io::save(f, path, {.metadata = {{"format", "pt"}, {"epoch", "3"}}});
  const auto files = dir.files();
  CHECK(files == std::vector<std::string>{"t.safetensors"}); // no temporary left behind

  const std::string bytes = read_file(path);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK((8 + n) % 8 == 0); // data buffer aligned
  CHECK(bytes[8] == '{');

  const auto c = io::read_safetensors<float>(path);
  CHECK(c.metadata == io::metadata_map{{"epoch", "3"}, {"format", "pt"}});
  REQUIRE(c.tensors.size() == 4);
  for (const auto& [name, t] : f) {
    const auto& got = c.tensors.at(name);
    CHECK(got.type == io::dtype::f32);
    CHECK(got.tensor.shape() == t.shape());
    CHECK((t.numel() == 0 || std::memcmp(got.tensor.data(), t.data(), t.numel() * sizeof(float)) == 0));
  }
  CHECK(c.tensors.at("scalar").tensor.shape().empty());
  CHECK(c.tensors.at("scalar").tensor.item() == -7.5f);

  const auto d_path = dir / "d.safetensors";
  const io::named_tensors<double> d = {{"x", grad::from<double>({0.1, 1.0 / 3.0, -1e300}, {3, 1})}};
  io::save(d, d_path);
  const auto h = io::inspect_safetensors(d_path);
  REQUIRE(h.tensors.size() == 1);
  CHECK(h.tensors[0].second.type == io::dtype::f64);
  CHECK(h.tensors[0].second.shape == grad::shape_type{3, 1});
  CHECK(h.tensors[0].second.begin == 0);
  CHECK(h.tensors[0].second.end == 24);
  CHECK(h.metadata.empty());
  const auto back = io::read_safetensors<double>(d_path).tensors.at("x").tensor;
  CHECK(back.value()(1, 0) == 1.0 / 3.0);
  CHECK(back.value()(2, 0) == -1e300);
  // F64 read as float: converted.
  CHECK(io::read_safetensors<float>(d_path).tensors.at("x").tensor.value()(0, 0) == 0.1f);
}

TEST_CASE("a hand-built safetensors file with F16, BF16, I64, I32, F64, U8 and BOOL tensors") {
  scratch_dir dir;
  const auto path = dir / "hand.safetensors";
  // F16: 1, -2, 65504 (max), 2^-24 (smallest subnormal), 1023 * 2^-24 (largest subnormal), inf, -inf, NaN, -0
  const std::uint16_t f16[] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x7c00, 0xfc00, 0x7e00, 0x8000};
  // BF16: 1, 3.140625, -inf, smallest subnormal 2^-133, NaN
  const std::uint16_t bf16[] = {0x3f80, 0x4049, 0xff80, 0x0001, 0x7fc0};
  const std::int64_t i64[] = {-5, 1LL << 40};
  const std::int32_t i32[] = {7, -2147483647 - 1};
  const double f64[] = {0.1};
  std::string data;
  auto append = [&](const void* p, std::size_t n) { data.append(static_cast<const char*>(p), n); };
  append(f16, sizeof f16);                // [0, 18)
  append(bf16, sizeof bf16);              // [18, 28)
  append(i64, sizeof i64);                // [28, 44)
  append(i32, sizeof i32);                // [44, 52)
  append(f64, sizeof f64);                // [52, 60)
  data += std::string("\x02\x00\x01", 3); // U8 [60, 61), BOOL [61, 63)
  const std::string header =
      R"({"__metadata__": {"note": "hand made"},)"
      R"( "h": {"dtype": "F16", "shape": [9], "data_offsets": [0, 18]},)"
      R"( "bf": {"dtype": "BF16", "shape": [5], "data_offsets": [18, 28]},)"
      R"( "l": {"dtype": "I64", "shape": [2, 1], "data_offsets": [28, 44]},)"
      R"( "i": {"dtype": "I32", "shape": [2], "data_offsets": [44, 52]},)"
      R"( "d": {"dtype": "F64", "shape": [], "data_offsets": [52, 60]},)"
      R"( "u": {"dtype": "U8", "shape": [1], "data_offsets": [60, 61]},)"
      R"( "z": {"dtype": "BOOL", "shape": [2], "data_offsets": [61, 63]}}    )"; // trailing space padding
  write_file(path, st_bytes(header, data));

  const auto c = io::read_safetensors<float>(path);
  CHECK(c.metadata.at("note") == "hand made");
  const auto& h = c.tensors.at("h");
  CHECK(h.type == io::dtype::f16);
  const float* hv = h.tensor.data();
  CHECK(hv[0] == 1.0f);
  CHECK(hv[1] == -2.0f);
  CHECK(hv[2] == 65504.0f);
  CHECK(hv[3] == std::ldexp(1.0f, -24));
  CHECK(hv[4] == 1023.0f * std::ldexp(1.0f, -24));
  CHECK(hv[5] == std::numeric_limits<float>::infinity());
  CHECK(hv[6] == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(hv[7]));
  CHECK(hv[8] == 0.0f);
  CHECK(std::signbit(hv[8]));
  const float* bv = c.tensors.at("bf").tensor.data();
  CHECK(bv[0] == 1.0f);
  CHECK(bv[1] == 3.140625f);
  CHECK(bv[2] == -std::numeric_limits<float>::infinity());
  CHECK(bv[3] == std::ldexp(1.0f, -133));
  CHECK(std::isnan(bv[4]));
  const auto& l = c.tensors.at("l").tensor;
  CHECK(l.shape() == grad::shape_type{2, 1});
  CHECK(l.data()[0] == -5.0f);
  CHECK(l.data()[1] == 1099511627776.0f);
  CHECK(c.tensors.at("i").tensor.data()[0] == 7.0f);
  CHECK(c.tensors.at("i").tensor.data()[1] == -2147483648.0f);
  CHECK(c.tensors.at("d").tensor.item() == 0.1f);
  CHECK(c.tensors.at("u").tensor.item() == 2.0f);
  CHECK(c.tensors.at("z").tensor.data()[0] == 0.0f);
  CHECK(c.tensors.at("z").tensor.data()[1] == 1.0f);

  // Every F16 bit pattern decodes to the float with the same value (checked against float arithmetic).
  for (std::uint32_t bits = 0; bits < 0x10000; ++bits) {
    const float v = io::half_to_float(static_cast<std::uint16_t>(bits));
    const std::uint32_t e = (bits >> 10) & 0x1f, m = bits & 0x3ff;
    const float mag = e == 0 ? std::ldexp(static_cast<float>(m), -24)
                             : std::ldexp(static_cast<float>(m + 1024), static_cast<int>(e) - 25);
    if (e == 31)
      CHECK((m == 0 ? std::isinf(v) : std::isnan(v)));
    else if (((bits & 0x8000) ? -mag : mag) != v)
      FAIL_CHECK("F16 bits " << bits << " decode to " << v << ", expected " << mag);
  }
}

TEST_CASE("hostile safetensors files throw io_error with the file name and the reason") {
  scratch_dir dir;
  const auto path = dir / "bad.safetensors";
  const std::string ok_data(8, '\0');
  auto error_for = [&](const std::string& bytes) {
    write_file(path, bytes);
    const std::string e = io_error_of([&] { (void)io::read_safetensors<float>(path); });
    // The same validation runs on every entry point.
    CHECK(io_error_of([&] { (void)io::inspect_safetensors(path); }).size() > 0);
    tiny_net net;
    CHECK(io_error_of([&] { io::load(net, path); }).size() > 0);
    CHECK_MESSAGE(contains(e, path.string()), e);
    return e;
  };
  auto tensor = [](const std::string& dtype, const std::string& shape, const std::string& offsets) {
    return R"({"dtype": ")" + dtype + R"(", "shape": )" + shape + R"(, "data_offsets": )" + offsets + "}";
  };
  const std::string one = R"({"a": )" + tensor("F32", "[2]", "[0, 8]") + "}";

  CHECK(contains(error_for(""), "truncated: the file has 0 bytes"));
  CHECK(contains(error_for("abc"), "truncated: the file has 3 bytes"));
  CHECK(contains(error_for(le64(1000) + "{}"),
                 "header length 1000 goes beyond the end of the file (10 bytes)"));
  CHECK(contains(error_for(le64(1ULL << 40) + "{}"), "larger than the 100 MB limit"));
  CHECK(contains(error_for(le64(~0ULL) + "{}"), "larger than the 100 MB limit"));
  CHECK(contains(error_for(le64(0)), "does not start with '{'"));
  CHECK(contains(error_for(st_bytes("[1, 2]", "")), "does not start with '{'"));
  CHECK(contains(error_for(st_bytes(R"({"a": {"dtype": "F32",)", "")), "invalid JSON at byte 22"));
  CHECK(contains(error_for(st_bytes("{\"a\": 1}\x01", "")), "invalid JSON"));
  CHECK(contains(error_for(st_bytes(R"({"a": 1})", "")), "tensor 'a': expected an object"));
  CHECK(contains(error_for(st_bytes(R"({"a": {"dtype": "F32", "shape": [2]}})", ok_data)),
                 "missing data_offsets"));
  CHECK(contains(error_for(st_bytes(R"({"a": )" + tensor("F8_E4M3", "[8]", "[0, 8]") + "}", ok_data)),
                 "dtype 'F8_E4M3' is not supported"));
  CHECK(contains(error_for(st_bytes(R"({"a": )" + tensor("Q4", "[8]", "[0, 8]") + "}", ok_data)),
                 "dtype 'Q4' is not supported"));
  CHECK(contains(error_for(st_bytes(R"({"a": )" + tensor("F32", "[-2]", "[0, 8]") + "}", ok_data)),
                 "shape[0] must be a non-negative integer, got -2"));
  CHECK(contains(error_for(st_bytes(R"({"a": )" + tensor("F32", "[2.0]", "[0, 8]") + "}", ok_data)),
                 "shape[0] must be a non-negative integer"));
  CHECK(contains(error_for(st_bytes(R"({"a": )" + tensor("F32", "2", "[0, 8]") + "}", ok_data)),
                 "shape must be an array"));
  CHECK(contains(error_for(st_bytes(R"({"a": )" + tensor("F32", "[2]", "[0, 8, 9]") + "}", ok_data)),
                 "data_offsets must be an array [begin, end]"));
  CHECK(contains(
      error_for(st_bytes(R"({"a": )" + tensor("F32", "[4294967296, 4294967296, 4294967296]", "[0, 8]") + "}",
                         ok_data)),
      "is too large (its size overflows)"));
  CHECK(contains(error_for(st_bytes(R"({"a": )" + tensor("F32", "[2]", "[8, 0]") + "}", ok_data)),
                 "end before begin"));
  CHECK(contains(error_for(st_bytes(R"({"a": )" + tensor("F32", "[2]", "[0, 4]") + "}", ok_data)),
                 "data_offsets [0, 4] hold 4 bytes, but F32 (2,) needs 8"));
  CHECK(contains(error_for(st_bytes(R"({"a": )" + tensor("F64", "[2]", "[0, 8]") + "}", ok_data)),
                 "hold 8 bytes, but F64 (2,) needs 16"));
  CHECK(contains(error_for(st_bytes(R"({"a": )" + tensor("F32", "[2]", "[4, 12]") + "}", ok_data)),
                 "go beyond the data buffer of 8 bytes"));
  CHECK(contains(error_for(st_bytes(R"({"a": )" + tensor("F32", "[2]", "[0, 8]") + R"(, "b": )" +
                                        tensor("F32", "[1]", "[4, 8]") + "}",
                                    ok_data)),
                 "tensors 'a' and 'b' overlap"));
  CHECK(contains(error_for(st_bytes(R"({"a": )" + tensor("F32", "[1]", "[4, 8]") + "}", ok_data)),
                 "bytes [0, 4) of the data buffer belong to no tensor"));
  CHECK(contains(error_for(st_bytes(one, ok_data + "xyz")),
                 "the last 3 bytes of the data buffer belong to no tensor"));
  CHECK(contains(error_for(st_bytes(one, "1234")), "go beyond the data buffer of 4 bytes"));
  CHECK(contains(error_for(st_bytes(R"({"a": )" + tensor("F32", "[1]", "[0, 4]") + R"(, "a": )" +
                                        tensor("F32", "[1]", "[4, 8]") + "}",
                                    ok_data)),
                 "names 'a' twice"));
  CHECK(contains(error_for(st_bytes(R"({"__metadata__": {"k": 1}})", "")),
                 "__metadata__ value of 'k' must be a string"));
  CHECK(contains(error_for(st_bytes(R"({"__metadata__": []})", "")), "__metadata__ must be an object"));
  CHECK(contains(error_for(st_bytes("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, "
                                    "99999999999999999999]}}",
                                    ok_data)),
                 "data_offsets[1] must be a non-negative integer"));
  // A valid file: nothing throws.
  write_file(path, st_bytes(one, ok_data));
  CHECK(io::read_safetensors<float>(path).tensors.at("a").tensor.numel() == 2);
  CHECK(contains(io_error_of([&] { (void)io::read_safetensors<float>(dir / "nope.safetensors"); }),
                 "cannot open: No such file or directory"));
  CHECK(contains(io_error_of([&] { (void)io::read_safetensors<float>(dir.path); }), "is a directory"));
}

TEST_CASE("every truncation and random corruption of a valid file is caught, never a crash") {
  scratch_dir dir;
  const auto good = dir / "good.safetensors";
  const io::named_tensors<float> t = {{"w", grad::from<float>({1, 2, 3, 4, 5, 6}, {2, 3})},
                                      {"b", grad::from<float>({7, 8})}};
  io::save(t, good, {.metadata = {{"k", "v"}}});
  const std::string bytes = read_file(good);
  const auto bad = dir / "bad.safetensors";
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    write_file(bad, bytes.substr(0, n));
    CHECK_MESSAGE(!io_error_of([&] { (void)io::read_safetensors<float>(bad); }).empty(),
                  "truncated to " << n);
  }
  std::mt19937 rng(42);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string b = bytes;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < flips; ++k)
      b[rng() % b.size()] = static_cast<char>(rng() & 0xff);
    write_file(bad, b);
    try {
      (void)io::read_safetensors<float>(bad); // may still be valid (e.g. a changed data byte)
    } catch (const grad::io_error&) {
    }
  }
}

TEST_CASE("load into a module: strict and non-strict, one message listing every problem") {
  scratch_dir dir;
  const auto path = dir / "m.safetensors";
  tiny_net src;
  src.w = grad::from<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  src.b = grad::from<float>({-1, -2, -3});
  io::save(src, path);

  tiny_net dst;
  const auto w_before = dst.w;
  CHECK(io::load(dst, path).missing_keys.empty());
  CHECK(dst.w.value()(1, 2) == 6.0f); // written in place: the handle seen by the caller changed
  CHECK(w_before.value()(1, 2) == 6.0f);
  CHECK(dst.b.value()(2) == -3.0f);

  // A file with a missing (fc.bias), an unexpected (extra) and a mis-shaped (fc.weight) tensor.
  const auto bad = dir / "bad.safetensors";
  io::save(
      io::named_tensors<float>{{"fc.weight", grad::zeros<float>({3, 2})}, {"extra", grad::ones<float>({1})}},
      bad);
  tiny_net fresh;
  std::string e = io_error_of([&] { io::load(fresh, bad); });
  CHECK(contains(e, bad.string()));
  CHECK(contains(e, "1 missing (in the module, not in the file): fc.bias"));
  CHECK(contains(e, "1 unexpected (in the file, not in the module): extra"));
  CHECK(contains(e, "1 mis-shaped: fc.weight (file (3, 2), module (2, 3))"));
  CHECK(contains(e, "nothing was loaded"));
  CHECK(fresh.w.value()(0, 0) == 0.0f);
  // Non-strict: missing and unexpected are skipped, but a mis-shaped tensor is still an error, alone.
  e = io_error_of([&] { io::load(fresh, bad, {.strict = false}); });
  CHECK(contains(e, "mis-shaped: fc.weight"));
  CHECK_FALSE(contains(e, "missing"));
  CHECK_FALSE(contains(e, "unexpected"));

  const auto partial = dir / "partial.safetensors";
  io::save(io::named_tensors<double>{{"fc.weight", grad::full<double>({2, 3}, 0.5)},
                                     {"extra", grad::ones<double>({1})}},
           partial);
  CHECK(contains(io_error_of([&] { io::load(fresh, partial); }), "pass {.strict = false}"));
  const auto r = io::load(fresh, partial, {.strict = false});
  CHECK(r.missing_keys == std::vector<std::string>{"fc.bias"});
  CHECK(r.unexpected_keys == std::vector<std::string>{"extra"});
  CHECK(fresh.w.value()(1, 1) == 0.5f); // F64 converted into the float module
  CHECK(fresh.b.value()(0) == 0.0f);    // missing: untouched

  // The named_tensors overload, and a duplicate destination name.
  io::named_tensors<float> v = {{"fc.weight", grad::zeros<float>({2, 3})},
                                {"fc.bias", grad::zeros<float>({3})}};
  io::load(v, path);
  CHECK(v[1].second.value()(1) == -2.0f);
  io::named_tensors<float> dup = {{"fc.bias", grad::zeros<float>({3})}, {"fc.bias", grad::zeros<float>({3})}};
  CHECK_THROWS_AS(io::load(dup, path, {.strict = false}), grad::value_error);
}

TEST_CASE("write_safetensors writes raw tensors of any dtype and rejects bad input") {
  scratch_dir dir;
  const auto path = dir / "raw.safetensors";
  const std::uint16_t half[] = {0x3c00, 0x4000}; // 1, 2
  const std::int64_t idx[] = {3, -1, 4};
  const std::vector<io::raw_tensor> raw = {
      {"h", io::dtype::f16, {2}, std::as_bytes(std::span(half))},
      {"i", io::dtype::i64, {3}, std::as_bytes(std::span(idx))},
  };
  io::write_safetensors(path, raw, {{"source", "test"}});
  const auto c = io::read_safetensors<double>(path);
  CHECK(c.tensors.at("h").type == io::dtype::f16);
  CHECK(c.tensors.at("h").tensor.data()[1] == 2.0);
  CHECK(c.tensors.at("i").tensor.data()[1] == -1.0);
  CHECK(c.metadata.at("source") == "test");

  const std::vector<io::raw_tensor> dup = {raw[0], raw[0]};
  CHECK_THROWS_WITH_AS(io::write_safetensors(dir / "x", dup), doctest::Contains("two tensors are named 'h'"),
                       grad::value_error);
  const std::vector<io::raw_tensor> meta = {
      {"__metadata__", io::dtype::f16, {2}, std::as_bytes(std::span(half))}};
  CHECK_THROWS_AS(io::write_safetensors(dir / "x", meta), grad::value_error);
  const std::vector<io::raw_tensor> wrong = {{"h", io::dtype::f32, {2}, std::as_bytes(std::span(half))}};
  CHECK_THROWS_WITH_AS(io::write_safetensors(dir / "x", wrong), doctest::Contains("does not match F32 (2,)"),
                       grad::value_error);
  CHECK_FALSE(fs::exists(dir / "x"));
}

TEST_CASE("atomic writes: no temporary left, and a failed write leaves the target untouched") {
  scratch_dir dir;
  const auto path = dir / "model.safetensors";
  write_file(path, "precious");
  // A failure in the middle of writing: the temporary is removed, the target keeps its old content.
  CHECK_THROWS_AS(io::detail::atomic_write(path, "test",
                                           [](io::detail::file_writer& w) {
                                             w.write("partial");
                                             throw grad::io_error("disk full (simulated)");
                                           }),
                  grad::io_error);
  CHECK(read_file(path) == "precious");
  CHECK(dir.files() == std::vector<std::string>{"model.safetensors"});
  // Saving into a missing directory names the file.
  const auto nowhere = dir / "no/such/dir/model.safetensors";
  const std::string e = io_error_of([&] { io::save(tiny_net{}, nowhere); });
  CHECK(contains(e, nowhere.string()));
  CHECK(contains(e, "save: '" + nowhere.string() +
                        "': cannot create a temporary file next to it: No such file"));
  // The target is a directory: the rename fails, the temporary is removed.
  fs::create_directory(dir / "taken");
  CHECK(contains(io_error_of([&] { io::save(tiny_net{}, dir / "taken"); }), "cannot rename"));
  CHECK(dir.files().size() == 2);
  // A successful save replaces the old content, with nothing else left in the directory.
  io::save(tiny_net{}, path);
  CHECK(io::inspect_safetensors(path).tensors.size() == 2);
  CHECK(dir.files().size() == 2);
}

TEST_CASE("npy round trip and the header NumPy expects") {
  scratch_dir dir;
  const auto path = dir / "a.npy";
  const auto t = grad::from<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  io::save_npy(t, path);
  const std::string bytes = read_file(path);
  REQUIRE(bytes.size() == 128 + 24);
  CHECK(bytes.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  CHECK(bytes.substr(10, dict.size()) == dict);
  CHECK(bytes[127] == '\n');
  CHECK(static_cast<unsigned char>(bytes[8]) + 256 * static_cast<unsigned char>(bytes[9]) == 118);
  const auto back = io::load_npy<float>(path);
  CHECK(back.shape() == t.shape());
  CHECK(back.value()(1, 2) == 6.0f);
  CHECK(dir.files() == std::vector<std::string>{"a.npy"});

  io::save_npy(grad::scalar_tensor<double>(0.1), dir / "s.npy");
  CHECK(contains(read_file(dir / "s.npy"), "'shape': (), }"));
  CHECK(io::load_npy<double>(dir / "s.npy").item() == 0.1);
  io::save_npy(grad::zeros<double>({0, 5}), dir / "e.npy");
  CHECK(io::load_npy<double>(dir / "e.npy").shape() == grad::shape_type{0, 5});
  io::save_npy(grad::arange<double>(7), dir / "v.npy");
  CHECK(contains(read_file(dir / "v.npy"), "'shape': (7,), }"));
  CHECK(io::load_npy<float>(dir / "v.npy").value()(6) == 6.0f); // <f8 read as float
  // A header longer than 65535 bytes needs format 2.0 (a 4-byte length).
  grad::shape_type many(22000, 1);
  many[0] = 0;
  io::save_npy(grad::zeros<float>(many), dir / "big.npy");
  const std::string big = read_file(dir / "big.npy");
  CHECK(big[6] == 2);
  CHECK(big.size() % 64 == 0);
  CHECK(io::load_npy<float>(dir / "big.npy").shape() == many);
}

TEST_CASE("hand-written npy files: versions, dtypes, and clear rejections") {
  scratch_dir dir;
  const auto path = dir / "h.npy";
  auto npy = [](const std::string& dict, const std::string& data, int major = 1) {
    std::string h = dict + "\n";
    std::string s = "\x93NUMPY";
    s += static_cast<char>(major);
    s += '\0';
    if (major == 1) {
      s += static_cast<char>(h.size() & 0xff);
      s += static_cast<char>(h.size() >> 8);
    } else {
      s += static_cast<char>(h.size() & 0xff);
      s += static_cast<char>((h.size() >> 8) & 0xff);
      s += std::string(2, '\0');
    }
    return s + h + data;
  };
  const std::int64_t i8[] = {-3, 5};
  write_file(path, npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2L,), }",
                       std::string(reinterpret_cast<const char*>(i8), sizeof i8)));
  auto t = io::load_npy<double>(path);
  CHECK(t.value()(0) == -3.0);
  CHECK(t.value()(1) == 5.0);
  const std::int32_t i4[] = {1, 2, 3, 4};
  write_file(path, npy(R"({"descr":"<i4","shape":(2,2),"fortran_order":False})",
                       std::string(reinterpret_cast<const char*>(i4), sizeof i4), 2));
  CHECK(io::load_npy<float>(path).value()(1, 1) == 4.0f);
  const std::uint16_t f2[] = {0x3c00};
  write_file(path, npy("{'descr': '<f2', 'fortran_order': False, 'shape': (), }",
                       std::string(reinterpret_cast<const char*>(f2), sizeof f2)));
  CHECK(io::load_npy<float>(path).item() == 1.0f);

  auto error_for = [&](const std::string& bytes) {
    write_file(path, bytes);
    const std::string e = io_error_of([&] { (void)io::load_npy<float>(path); });
    CHECK_MESSAGE(contains(e, path.string()), e);
    return e;
  };
  const std::string eight(8, '\0');
  CHECK(contains(error_for(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", eight)),
                 "fortran_order is True"));
  CHECK(contains(error_for(npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", eight)),
                 "big-endian data ('>f4') is not supported"));
  CHECK(contains(error_for(npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", eight)),
                 "dtype '<c8' is not supported"));
  CHECK(contains(error_for(npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "")),
                 "structured dtypes are not supported"));
  CHECK(contains(error_for(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", eight)),
                 "truncated: header says <f4 (3,) = 12 bytes of data, file has 8"));
  CHECK(contains(error_for(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", eight)),
                 "corrupted: header says <f4 (1,) = 4 bytes of data, file has 8"));
  CHECK(contains(error_for(npy("{'descr': '<f4', 'shape': (1,), }", eight)), "lacks 'fortran_order'"));
  CHECK(contains(error_for(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", eight)),
                 "unexpected key 'x'"));
  CHECK(contains(error_for(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", eight)),
                 "shape must be a tuple of non-negative integers"));
  CHECK(
      contains(error_for(npy(
                   "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }", eight)),
               "too large"));
  CHECK(contains(
      error_for(
          npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4), }", eight)),
      "overflows"));
  CHECK(contains(error_for(npy("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }", eight)),
                 "must be True or False"));
  CHECK(contains(error_for(npy("{'descr': '<f4", "")), "unterminated string"));
  CHECK(contains(error_for(std::string("\x93NUMPY\x01\x00\xff\x00{}", 12)),
                 "header length 255 goes beyond the end of the file"));
  CHECK(contains(error_for(npy("{}", "", 4)), "unsupported .npy format version 4.0"));
  CHECK(contains(error_for("PK\x03\x04 not npy"), "not a .npy file"));
  CHECK(contains(error_for(""), "not a .npy file"));
  // Every truncation of a valid file throws.
  io::save_npy(grad::from<float>({1, 2, 3}), path);
  const std::string good = read_file(path);
  for (std::size_t n = 0; n < good.size(); ++n)
    CHECK(!error_for(good.substr(0, n)).empty());
}

TEST_CASE("docs/saving-and-loading.md snippets") {
  scratch_dir dir;
  const auto model_path = dir / "model.safetensors";
  // --- snippet: save and load a module
  struct mlp {
    grad::tensor w1 = grad::randn<float>({784, 128});
    grad::tensor b1 = grad::zeros<float>({128});
    grad::io::named_tensors<float> named_parameters() const { return {{"fc1.weight", w1}, {"fc1.bias", b1}}; }
  };
  mlp net;
  grad::io::save(net, model_path, {.metadata = {{"epoch", "10"}}});
  mlp restored;
  grad::io::load(restored, model_path); // strict: names and shapes must match exactly
  // --- end snippet
  CHECK(restored.w1.value()(5, 7) == net.w1.value()(5, 7));

  // --- snippet: non-strict
  auto result = grad::io::load(restored, model_path, {.strict = false});
  for (const auto& name : result.missing_keys)
    std::printf("not in the file: %s\n", name.c_str());
  // --- end snippet

  // --- snippet: low level
  auto file = grad::io::read_safetensors<float>(model_path);
  for (const auto& [name, t] : file.tensors)
    std::printf("%s %s %s\n", name.c_str(), std::string(grad::io::dtype_name(t.type)).c_str(),
                grad::to_string(t.tensor.shape()).c_str());
  auto header = grad::io::inspect_safetensors(model_path); // names, dtypes, shapes, offsets only
  CHECK(header.metadata.at("epoch") == "10");
  // --- end snippet
  CHECK(file.tensors.at("fc1.bias").tensor.numel() == 128);

  // --- snippet: npy
  grad::io::save_npy(net.w1, dir / "w1.npy");          // numpy.load("w1.npy")
  auto w1 = grad::io::load_npy<float>(dir / "w1.npy"); // numpy.save(...) with <f4/<f8/<i4/<i8
  // --- end snippet
  CHECK(w1.shape() == grad::shape_type{784, 128});
}
