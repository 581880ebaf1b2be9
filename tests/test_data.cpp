// Tests of grad/data: datasets, data_loader and the CSV reader.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <numeric>
#include <random>
#include <ranges>
#include <set>
#include <string>
#include <vector>

#include "grad/core/factories.hpp"
#include "grad/data/csv.hpp"
#include "grad/data/data_loader.hpp"
#include "grad/data/dataset.hpp"

namespace fs = std::filesystem;
namespace data = grad::data;

namespace {

struct scratch_dir {
  fs::path path;
  scratch_dir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("grad_test_data_" + std::to_string(rd()) + std::to_string(rd()));
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

// N examples whose input row i is (i, 10 i, 100 i) and target i % 3: the batch shows which rows it holds.
data::tensor_dataset<float> numbered(std::size_t n) {
  std::vector<float> x, y;
  for (std::size_t i = 0; i < n; ++i) {
    const auto f = static_cast<float>(i);
    x.insert(x.end(), {f, 10 * f, 100 * f});
    y.push_back(static_cast<float>(i % 3));
  }
  return {grad::from<float>(x, {n, 3}), grad::from<float>(y, {n})};
}

// Row indices of a batch of `numbered`, checking the targets travelled with their inputs.
std::vector<std::size_t> rows_of(const data::batch<float>& b) {
  std::vector<std::size_t> r;
  for (std::size_t k = 0; k < b.inputs.size(0); ++k) {
    const float i = b.inputs.value()(k, 0);
    CHECK(b.inputs.value()(k, 2) == 100 * i);
    CHECK(b.targets.value()(k) == static_cast<float>(static_cast<std::size_t>(i) % 3));
    r.push_back(static_cast<std::size_t>(i));
  }
  return r;
}

// A dataset without get_batch: the loader stacks its examples.
struct squares {
  std::size_t n = 5;
  std::size_t size() const { return n; }
  data::example<double> get(std::size_t i) const {
    const auto v = static_cast<double>(i);
    return {grad::from<double>({v, v * v}, {1, 2}), grad::scalar_tensor<double>(v)};
  }
};
static_assert(data::dataset<squares>);
static_assert(!data::batched_dataset<squares>);
static_assert(data::batched_dataset<data::tensor_dataset<float>>);
static_assert(!data::dataset<int>);
static_assert(std::input_iterator<data::data_loader<data::tensor_dataset<float>&>::iterator>);
static_assert(std::ranges::input_range<data::data_loader<data::tensor_dataset<float>>>);

// A dataset whose examples do not all have the same shape.
struct ragged {
  std::size_t size() const { return 3; }
  data::example<float> get(std::size_t i) const {
    return {grad::zeros<float>({i == 2 ? 4u : 3u}), grad::scalar_tensor<float>(0)};
  }
};

} // namespace

TEST_CASE("tensor_dataset: size, get, get_batch and shape checks") {
  auto ds = numbered(7);
  CHECK(ds.size() == 7);
  const auto e = ds.get(4);
  CHECK(e.input.shape() == grad::shape_type{3});
  CHECK(e.input.value()(1) == 40.0f);
  CHECK(e.target.shape().empty());
  CHECK(e.target.item() == 1.0f);
  const std::size_t idx[] = {6, 0, 6};
  const auto b = ds.get_batch(idx);
  CHECK(b.inputs.shape() == grad::shape_type{3, 3});
  CHECK(rows_of(b) == std::vector<std::size_t>{6, 0, 6});
  CHECK_THROWS_AS(ds.get(7), grad::value_error);
  CHECK_THROWS_AS(data::tensor_dataset<float>(grad::zeros<float>({4, 2}), grad::zeros<float>({5})),
                  grad::shape_error);
  CHECK_THROWS_AS(data::tensor_dataset<float>(grad::scalar_tensor<float>(1), grad::zeros<float>({1})),
                  grad::shape_error);
  // Images (N, 1, 28, 28): a row is a whole image.
  std::vector<float> pixels(2 * 784);
  std::iota(pixels.begin(), pixels.end(), 0.0f);
  data::tensor_dataset<float> img(grad::from<float>(pixels, {2, 1, 28, 28}), grad::from<float>({0, 1}));
  const std::size_t one[] = {1};
  const auto ib = img.get_batch(one);
  CHECK(ib.inputs.shape() == grad::shape_type{1, 1, 28, 28});
  CHECK(ib.inputs.data()[0] == 784.0f);
}

TEST_CASE("data_loader: batch shapes, the last partial batch, drop_last") {
  auto ds = numbered(10);
  data::data_loader loader(ds, {.batch_size = 4});
  CHECK(loader.size() == 3);
  std::vector<std::size_t> sizes;
  std::vector<std::size_t> seen;
  for (const auto& [x, y] : loader) {
    CHECK(x.dim() == 2);
    CHECK(x.size(1) == 3);
    CHECK(y.shape() == grad::shape_type{x.size(0)});
    sizes.push_back(x.size(0));
  }
  CHECK(sizes == std::vector<std::size_t>{4, 4, 2});
  for (const auto& b : loader)
    for (auto r : rows_of(b))
      seen.push_back(r);
  CHECK(seen == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}); // no shuffle: in order

  data::data_loader dropping(ds, {.batch_size = 4, .drop_last = true});
  CHECK(dropping.size() == 2);
  std::size_t batches = 0;
  for (const auto& b : dropping) {
    CHECK(b.inputs.size(0) == 4);
    ++batches;
  }
  CHECK(batches == 2);

  data::data_loader exact(ds, {.batch_size = 5, .drop_last = true});
  CHECK(exact.size() == 2);
  data::data_loader big(ds, {.batch_size = 64});
  CHECK(big.size() == 1);
  CHECK((*big.begin()).inputs.size(0) == 10);
  data::data_loader none(numbered(3), {.batch_size = 4, .drop_last = true}); // an rvalue dataset is moved in
  CHECK(none.size() == 0);
  CHECK(none.begin() == none.end());
  CHECK_THROWS_AS(data::data_loader(ds, {.batch_size = 0}), grad::value_error);
}

TEST_CASE("data_loader shuffle: every index exactly once per epoch, reproducible, seed-dependent") {
  auto ds = numbered(103);
  auto epoch_order = [](auto& loader) {
    std::vector<std::size_t> order;
    for (const auto& b : loader)
      for (auto r : rows_of(b))
        order.push_back(r);
    return order;
  };
  data::data_loader a(ds, {.batch_size = 10, .shuffle = true, .seed = 7});
  data::data_loader b(ds, {.batch_size = 10, .shuffle = true, .seed = 7});
  data::data_loader c(ds, {.batch_size = 10, .shuffle = true, .seed = 8});
  const auto a1 = epoch_order(a), a2 = epoch_order(a);
  const auto b1 = epoch_order(b), b2 = epoch_order(b);
  const auto c1 = epoch_order(c);
  for (const auto* o : {&a1, &a2, &c1}) {
    CHECK(o->size() == 103);
    CHECK(std::set<std::size_t>(o->begin(), o->end()).size() == 103);
  }
  CHECK(a1 == b1); // same seed: same sequence of epochs
  CHECK(a2 == b2);
  CHECK(a1 != a2); // a new order every epoch
  CHECK(a1 != c1); // another seed, another order
  std::vector<std::size_t> identity(103);
  std::iota(identity.begin(), identity.end(), std::size_t{0});
  CHECK(a1 != identity);
  CHECK(a.epoch() == 2);
  CHECK(a.order() == a2);

  // drop_last with shuffle: each epoch drops 3 different examples, the rest exactly once.
  data::data_loader d(ds, {.batch_size = 10, .shuffle = true, .drop_last = true, .seed = 1});
  const auto d1 = epoch_order(d);
  CHECK(d1.size() == 100);
  CHECK(std::set<std::size_t>(d1.begin(), d1.end()).size() == 100);
}

TEST_CASE("data_loader stacks examples of a dataset without get_batch") {
  data::data_loader loader(squares{}, {.batch_size = 2});
  CHECK(loader.size() == 3);
  auto it = loader.begin();
  CHECK(it->inputs.shape() == grad::shape_type{2, 1, 2});
  CHECK(it->targets.shape() == grad::shape_type{2});
  ++it;
  CHECK(it->inputs.value()(1, 0, 1) == 9.0);
  ++it;
  CHECK(it->inputs.shape() == grad::shape_type{1, 1, 2});
  CHECK(it->targets.value()(0) == 4.0);
  ++it;
  CHECK(it == loader.end());

  data::data_loader bad(ragged{}, {.batch_size = 3});
  CHECK_THROWS_WITH_AS(bad.begin(), doctest::Contains("different shapes: (3,) (first) and (4,)"),
                       grad::shape_error);
}

TEST_CASE("class_indices turns float targets into integer class indices") {
  CHECK(data::class_indices(grad::from<float>({0, 3, 9})).values() == std::vector<std::int64_t>{0, 3, 9});
  CHECK(data::class_indices(grad::from<float>({{1, 2}, {0, 4}})).shape() == grad::shape_type{2, 2});
  CHECK(data::class_indices(grad::from<float>({0, 3, 9}), 10).numel() == 3);
  CHECK_THROWS_WITH_AS(data::class_indices(grad::from<float>({0, 10}), 10),
                       doctest::Contains("target 1 is 10.000000, not a class index in [0, 10)"),
                       grad::value_error);
  CHECK_THROWS_AS(data::class_indices(grad::from<float>({1.5f})), grad::value_error);
  CHECK_THROWS_AS(data::class_indices(grad::from<float>({-1})), grad::value_error);
  CHECK_THROWS_AS(data::class_indices(grad::from<double>({std::nan("")})), grad::value_error);
}

TEST_CASE("read_csv: header, delimiters, quotes, CRLF, BOM and blank lines") {
  scratch_dir dir;
  write_file(dir / "a.csv", "\xEF\xBB\xBFx,y, \"z\"\r\n1,2,3\r\n\r\n 4.5 , -6e2 ,\"+7\"\r\n");
  const auto t = data::read_csv(dir / "a.csv");
  CHECK(t.columns == std::vector<std::string>{"x", "y", "z"});
  CHECK(t.values.shape() == grad::shape_type{2, 3});
  CHECK(t.values.value()(1, 0) == 4.5f);
  CHECK(t.values.value()(1, 1) == -600.0f);
  CHECK(t.values.value()(1, 2) == 7.0f);

  write_file(dir / "b.csv", "1;2\n3;4"); // no trailing newline
  const auto b = data::read_csv<double>(dir / "b.csv", {.header = false, .delimiter = ';'});
  CHECK(b.columns.empty());
  CHECK(b.values.shape() == grad::shape_type{2, 2});
  CHECK(b.values.value()(1, 1) == 4.0);

  write_file(dir / "c.tsv", "a\tb\n1\t2\n");
  CHECK(data::read_csv(dir / "c.tsv", {.delimiter = '\t'}).values.value()(0, 1) == 2.0f);
  write_file(dir / "q.csv", "\"a,b\",\"say \"\"hi\"\"\"\n1,nan\n");
  const auto q = data::read_csv(dir / "q.csv");
  CHECK(q.columns == std::vector<std::string>{"a,b", "say \"hi\""});
  CHECK(std::isnan(q.values.value()(0, 1)));
  write_file(dir / "empty.csv", "");
  CHECK(data::read_csv(dir / "empty.csv").values.shape() == grad::shape_type{0, 0});
  write_file(dir / "head.csv", "a,b\n");
  CHECK(data::read_csv(dir / "head.csv").values.shape() == grad::shape_type{0, 2});
}

TEST_CASE("read_csv errors name the file, the line and the column") {
  scratch_dir dir;
  const auto p = dir / "bad.csv";
  auto error_for = [&](const std::string& text, data::csv_options opt = {}) {
    write_file(p, text);
    const std::string e = io_error_of([&] { (void)data::read_csv(p, opt); });
    CHECK_MESSAGE(contains(e, p.string()), e);
    return e;
  };
  CHECK(contains(error_for("a,b\n1,2\n3,abc\n"), "line 3, column 2 ('b'): cannot parse 'abc' as a number"));
  CHECK(
      contains(error_for("1,2\n3,4,5\n", {.header = false}), "line 2: 3 columns, expected 2 (as on line 1)"));
  CHECK(contains(error_for("a,b\n\n1\n"), "line 3: 1 columns, expected 2 (as on line 1)"));
  CHECK(contains(error_for("a,b\n1,\n"), "line 2, column 2 ('b'): empty cell"));
  CHECK(contains(error_for("a\n1e999\n"), "'1e999' is out of the range"));
  CHECK(contains(error_for("a\n\"1\n"), "line 2, column 1: unterminated quoted cell"));
  CHECK(contains(error_for("a\n\"1\"x\n"), "unexpected text after a quoted cell"));
  CHECK(contains(error_for("a\n0x10\n"), "cannot parse '0x10'"));
  CHECK(contains(io_error_of([&] { (void)data::read_csv(dir / "missing.csv"); }), "cannot open"));
}

TEST_CASE("docs/data.md snippets") {
  // --- snippet: tensor_dataset and data_loader
  grad::generator gen(0);
  auto x = grad::randn<float>({1000, 8}, gen); // (N, features)
  auto y = grad::rand<float>({1000, 1}, gen);  // (N, 1) regression targets
  grad::data::tensor_dataset<float> ds(x, y);
  grad::data::data_loader loader(ds, {.batch_size = 64, .shuffle = true, .drop_last = false, .seed = 42});
  for (int epoch = 0; epoch < 2; ++epoch) {
    for (const auto& [inputs, targets] : loader) {
      // inputs: (64, 8) (the last batch: (40, 8)), targets: (64, 1)
      CHECK(inputs.size(0) == targets.size(0));
    }
  }
  // --- end snippet
  CHECK(loader.size() == 16);

  // --- snippet: class labels
  auto labels = grad::from<float>({3, 0, 1});                     // (N,) class indices as floats
  grad::index_tensor idx = grad::data::class_indices(labels, 10); // checked integers, for cross_entropy
  // --- end snippet
  CHECK(idx[0] == 3);

  scratch_dir dir;
  write_file(dir / "houses.csv", "area,rooms,price\n120,4,350000\n80,2,210000\n");
  // --- snippet: csv
  auto table = grad::data::read_csv(dir / "houses.csv"); // {.header = true, .delimiter = ','}
  // table.columns == {"area", "rooms", "price"}; table.values: (rows, 3)
  // --- end snippet
  CHECK(table.values.value()(1, 2) == 210000.0f);
}
