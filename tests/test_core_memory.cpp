// The memory layer under the tensors: shape_type (small_vector), the caching block allocator and the
// cache of array objects, and grad::empty_cache().

#include <doctest/doctest.h>

#include <grad/grad.hpp>

#include <cstdint>
#include <thread>
#include <vector>

namespace {

bool aligned64(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % 64 == 0;
}

// AddressSanitizer builds turn the caches off (GRAD_ARRAY_POOL_BYTES = 0) so use-after-free is caught.
constexpr bool caching = GRAD_ARRAY_POOL_BYTES > 0;

} // namespace

TEST_CASE("small_vector: std::vector's interface, inline and on the heap") {
  using sv = grad::small_vector<std::size_t, 4>;
  sv a;
  CHECK(a.empty());
  CHECK(a.capacity() == 4);
  for (std::size_t i = 0; i < 10; ++i) // grows past the inline capacity onto the heap
    a.push_back(i);
  CHECK(a.size() == 10);
  CHECK(a.capacity() >= 10);
  for (std::size_t i = 0; i < 10; ++i)
    CHECK(a[i] == i);
  CHECK(a.front() == 0);
  CHECK(a.back() == 9);

  sv b(a); // heap copy
  CHECK(b == a);
  sv c(std::move(b)); // heap move
  CHECK(c == a);
  CHECK(b.empty());

  a.erase(a.begin() + 2, a.begin() + 8);
  CHECK(a == sv{0, 1, 8, 9});
  a.insert(a.begin() + 1, 7);
  CHECK(a == sv{0, 7, 1, 8, 9});
  a.insert(a.end(), {3, 4});
  CHECK(a == sv{0, 7, 1, 8, 9, 3, 4});
  a.insert(a.begin(), a.begin() + 5, a.end()); // a source inside the vector itself
  CHECK(a == sv{3, 4, 0, 7, 1, 8, 9, 3, 4});
  a.push_back(a[0]); // an element of the vector itself, while it may grow
  CHECK(a.back() == 3);
  a.resize(2);
  CHECK(a == sv{3, 4});
  a.resize(4, 5);
  CHECK(a == sv{3, 4, 5, 5});
  a.pop_back();
  CHECK(a.size() == 3);
  CHECK_THROWS_AS(a.at(3), std::out_of_range);

  sv d(3, 2); // count and value, not a range
  CHECK(d == sv{2, 2, 2});
  sv e(2);
  CHECK(e == sv{0, 0});
  d.swap(a);
  CHECK(a == sv{2, 2, 2});
  CHECK(d == sv{3, 4, 5});
  CHECK(sv{1, 2} < sv{1, 3});
  CHECK(sv{1, 2} < sv{1, 2, 0});
  CHECK(sv{2} > sv{1, 9});
  CHECK(std::vector<std::size_t>(d.rbegin(), d.rend()) == std::vector<std::size_t>{5, 4, 3});
}

TEST_CASE("shape_type converts from and to std::vector and compares with xtensor shapes") {
  const std::vector<std::size_t> v{2, 3, 4};
  const grad::shape_type s = v;
  const std::vector<std::size_t> back = s;
  CHECK(back == v);
  CHECK(s == v);
  CHECK(v == s);
  const auto t = grad::zeros<float>(v);
  CHECK(t.shape() == v);
  CHECK(t.value().shape() == t.shape());
  CHECK(t.shape() == t.value().shape());
  CHECK(t.shape() != grad::shape_type{2, 3});
  CHECK(grad::to_string(grad::shape_type{1, 2, 3, 4, 5, 6, 7}) == "(1, 2, 3, 4, 5, 6, 7)");
  // more dimensions than shape_type keeps inline still work end to end
  auto x = grad::ones<double>({1, 2, 1, 2, 1, 2, 1, 2}, {.requires_grad = true});
  grad::sum(x * x).backward();
  CHECK(x.grad().size() == 16);
  CHECK(x.grad()(0, 1, 0, 1, 0, 1, 0, 1) == doctest::Approx(2.0));
}

TEST_CASE("block_cache: size classes, 64-byte alignment, reuse and its bound") {
  using grad::detail::block_cache;
  CHECK(block_cache::class_bytes(0) == 64);
  CHECK(block_cache::class_bytes(1) == 64);
  CHECK(block_cache::class_bytes(64) == 64);
  CHECK(block_cache::class_bytes(65) == 128);
  CHECK(block_cache::class_bytes(64 << 10) == (64 << 10));
  CHECK(block_cache::class_bytes((64 << 10) + 1) == (64 << 10) + 4096);

  grad::empty_cache();
  CHECK(block_cache::local()->bytes() == 0);
  void* p = block_cache::allocate(100);
  CHECK(aligned64(p));
  block_cache::deallocate(p, 100);
  CHECK(block_cache::local()->bytes() == (caching ? 128 : 0));
  void* q = block_cache::allocate(128); // same class: the block just freed
  if (caching)
    CHECK(q == p);
  block_cache::deallocate(q, 128);
  void* big = block_cache::allocate(3 << 20);
  CHECK(aligned64(big));
  block_cache::deallocate(big, 3 << 20);
  CHECK(block_cache::local()->bytes() == (caching ? 128 + (3 << 20) : 0));
  void* big2 = block_cache::allocate((3 << 20) - 100); // rounds to the same 4 KiB class
  if (caching)
    CHECK(big2 == big);
  block_cache::deallocate(big2, (3 << 20) - 100);

  // Past GRAD_ARRAY_POOL_BYTES per thread, freed blocks go back to the system.
  std::vector<void*> blocks;
  const std::size_t each = 64 << 20;
  for (std::size_t i = 0; i < GRAD_ARRAY_POOL_BYTES / each + 2; ++i)
    blocks.push_back(block_cache::allocate(each));
  for (void* b : blocks)
    block_cache::deallocate(b, each);
  CHECK(block_cache::local()->bytes() <= GRAD_ARRAY_POOL_BYTES);

  grad::empty_cache();
  CHECK(block_cache::local()->bytes() == 0);
}

TEST_CASE("a block freed on another thread is reused there, and the tensors stay correct") {
  grad::empty_cache();
  std::vector<grad::tensor> made;
  std::thread([&] {
    for (int i = 0; i < 100; ++i)
      made.push_back(grad::full<float>({37}, float(i)));
  }).join(); // that thread's cache died with it; its tensors live on
  for (int i = 0; i < 100; ++i) {
    CHECK(made[i].value()(36) == float(i));
    CHECK(aligned64(made[i].data()));
  }
  made.clear(); // freed here: the blocks join this thread's cache
  CHECK((grad::detail::block_cache::local()->bytes() > 0) == caching);
  const auto t = grad::full<float>({37}, 2.0f);
  CHECK(t.value()(0) == 2.0f);
  grad::empty_cache();
}

TEST_CASE("array_cache: a dead tensor's array serves the next tensor of the same shape") {
  grad::empty_cache();
  auto a = grad::ones<float>({3, 5}, {.requires_grad = true});
  auto y = a * 2.0f;
  const float* first = y.data();
  CHECK(aligned64(first));
  y = grad::tensor(); // the output dies: its array goes to the cache
  auto z = a * 3.0f;  // same shape: the same array object and buffer, with the new values
  if (caching)
    CHECK(z.data() == first);
  CHECK(z.value()(2, 4) == 3.0f);
  auto w = grad::sum(a * 4.0f); // other shapes get their own arrays
  w.backward();
  CHECK(a.grad()(1, 1) == 4.0f);
  // a value the user resized is cached under its new shape, and still correct when reused
  auto u = a * 1.0f;
  u.value().resize({15});
  u = grad::tensor();
  auto r = grad::arange<float>(15) * 1.0f; // an op's output of shape (15,): takes the cached array
  CHECK(r.shape() == grad::shape_type{15});
  CHECK(r.value()(14) == 14.0f);
  grad::empty_cache();
  CHECK(grad::detail::block_cache::local()->bytes() == 0);
}

TEST_CASE("backward frees each gradient once consumed, except retained ones") {
  auto w = grad::full<float>({4}, 2.0f, {.requires_grad = true});
  auto h = w * w;
  auto k = h * w;
  k.retain_grad();
  auto loss = grad::sum(k * 1.0f);
  loss.backward();
  CHECK(w.grad()(0) == doctest::Approx(12.0f)); // d(w^3)/dw = 3 w^2
  CHECK(k.has_grad());
  CHECK(k.grad()(3) == 1.0f);
  CHECK_FALSE(h.has_grad());
}

TEST_CASE("tensor handles count references to one shared state (impl_ref)") {
  auto a = grad::full<float>({3}, 1.0f);
  CHECK(a.impl().use_count() == 1);
  {
    auto b = a; // copy: one more owner
    CHECK(a.impl().use_count() == 2);
    CHECK(b.impl() == a.impl());
    auto c = std::move(b); // move: ownership passes, the count stays
    CHECK(a.impl().use_count() == 2);
    CHECK_FALSE(b.defined());
    const auto& alias = c;
    c = alias; // self-assignment keeps the state alive
    CHECK(c.impl().use_count() == 2);
    CHECK(c.value()(2) == 1.0f);
    c = grad::tensor(); // reset
    CHECK(a.impl().use_count() == 1);
  }
  // Copies made and dropped on several threads at once keep the count exact (atomic once threaded).
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([a] {
      for (int i = 0; i < 100000; ++i) {
        auto copy = a;
        auto again = copy;
        (void)again;
      }
    });
  for (auto& th : threads)
    th.join();
  CHECK(a.impl().use_count() == 1);
  CHECK(a.value()(0) == 1.0f);
}

TEST_CASE("a node and its output unlink whichever ends first") {
  auto x = grad::full<double>({2}, 1.5, {.requires_grad = true});
  auto kept = x * 3.0;
  auto dropped = x * 5.0;
  auto* node_of_dropped = dropped.impl()->creator;
  REQUIRE(node_of_dropped != nullptr);
  CHECK(node_of_dropped->output_alive());
  dropped = grad::dtensor(); // the output ends first: its node knows, and backward skips it
  CHECK_FALSE(node_of_dropped->output_alive());
  grad::sum(kept).backward();
  CHECK(x.grad()(0) == doctest::Approx(3.0));
  // The tape was cleared by backward (its nodes ended first): the output outlives its node, stays a
  // non-leaf, and dropping it later touches no freed node (AddressSanitizer checks this in CI).
  CHECK_FALSE(kept.is_leaf());
  CHECK_FALSE(kept.impl()->node_linked);
  kept = grad::dtensor();
  CHECK(x.grad()(1) == doctest::Approx(3.0));
}
