#pragma once
/// @file core/generator.hpp
/// grad::generator: a seeded random source, so every run can be reproduced bit for bit on any
/// compiler (the distributions are written here, not taken from <random>, whose output differs
/// between standard libraries).

#include <cmath>
#include <cstdint>
#include <numbers>

namespace grad {

/// A seeded pseudo-random generator (xoshiro256** by Blackman and Vigna, seeded with splitmix64).
class generator {
public:
  /// A generator seeded with `seed`.
  explicit generator(std::uint64_t seed = 0) noexcept { manual_seed(seed); }

  /// Restarts the sequence from `seed`.
  void manual_seed(std::uint64_t seed) noexcept {
    std::uint64_t x = seed;
    for (auto& w : s_) { // splitmix64 spreads any seed (even 0) over the whole state
      x += 0x9e3779b97f4a7c15ULL;
      std::uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      w = z ^ (z >> 31);
    }
    has_spare_ = false;
  }

  /// The next 64 random bits.
  std::uint64_t next_u64() noexcept {
    const std::uint64_t r = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }

  /// Uniform double in [0, 1) with 53 random bits.
  double uniform() noexcept { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  /// Uniform double in [lo, hi).
  double uniform(double lo, double hi) noexcept { return lo + (hi - lo) * uniform(); }
  /// Standard normal sample (Box-Muller; the second value of each pair is kept for the next call).
  double normal() noexcept {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = 0;
    while (u1 <= 0)
      u1 = uniform();
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(2 * std::numbers::pi * u2);
    has_spare_ = true;
    return r * std::cos(2 * std::numbers::pi * u2);
  }
  /// Normal sample with the given mean and standard deviation.
  double normal(double mean, double stddev) noexcept { return mean + stddev * normal(); }
  /// Uniform integer in [0, n) without modulo bias (n > 0).
  std::uint64_t randint(std::uint64_t n) noexcept {
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    std::uint64_t x;
    do
      x = next_u64();
    while (x >= limit);
    return x % n;
  }

private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4]{};
  double spare_ = 0;
  bool has_spare_ = false;
};

/// The thread's default generator, used by factories when none is given.
inline generator& default_generator() noexcept {
  thread_local generator g(0x5eed);
  return g;
}

/// Re-seeds the thread's default generator.
inline void manual_seed(std::uint64_t seed) noexcept {
  default_generator().manual_seed(seed);
}

} // namespace grad
