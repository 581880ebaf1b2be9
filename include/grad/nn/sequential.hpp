#pragma once
/// @file nn/sequential.hpp
/// sequential(a, b, c): modules composed at compile time into a std::tuple (DESIGN.md section 6).
/// forward chains them with no virtual calls; each network is its own type.

#include <cstddef>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "grad/nn/module.hpp"

namespace grad::nn {

/// Modules applied in order: the output of each is the input of the next. Parameters are named by
/// position: `0.weight`, `2.bias`. Module i is `get<i>()`.
template <module... Ms>
requires(sizeof...(Ms) > 0) class sequential
    : public module_base<sequential<Ms...>, typename std::tuple_element_t<0, std::tuple<Ms...>>::value_type> {
public:
  using value_type = typename std::tuple_element_t<0, std::tuple<Ms...>>::value_type; ///< element type
  static_assert((std::is_same_v<typename Ms::value_type, value_type> && ...),
                "sequential: all modules must have the same value_type (float or double)");

  /// The modules, moved (or copied: a copy shares parameters) into the tuple.
  explicit sequential(Ms... ms) : modules_(std::move(ms)...) {}

  /// Runs every module in order on x.
  template <class X>
  auto forward(X&& x) {
    return run<0>(std::forward<X>(x));
  }
  /// Module i.
  template <std::size_t I>
  auto& get() {
    return std::get<I>(modules_);
  }
  /// Module i (const).
  template <std::size_t I>
  const auto& get() const {
    return std::get<I>(modules_);
  }
  /// Number of modules.
  static constexpr std::size_t size() { return sizeof...(Ms); }
  /// Lists the modules as children "0", "1", ...
  template <class V>
  void visit(V& v) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (v.child(std::to_string(I), std::get<I>(modules_)), ...);
    }
    (std::index_sequence_for<Ms...>{});
  }

private:
  template <std::size_t I, class X>
  auto run(X&& x) {
    if constexpr (I + 1 == sizeof...(Ms))
      return std::get<I>(modules_)(std::forward<X>(x));
    else
      return run<I + 1>(std::get<I>(modules_)(std::forward<X>(x)));
  }
  std::tuple<Ms...> modules_;
};

} // namespace grad::nn
