#pragma once
/// @file core/error.hpp
/// The exception types of grad (DESIGN.md section 7) and the internal-invariant macro.

#include <cassert>
#include <stdexcept>
#include <string>

namespace grad {

/// Base of every exception grad throws; catch this to catch them all.
class error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A shape rule was broken: the message names the op and the shapes involved.
class shape_error : public error {
public:
  using error::error;
};

/// A value is out of its allowed range (a bad option, an index out of range, a non-scalar item()).
class value_error : public error {
public:
  using error::error;
};

/// Reading or writing a file failed: the message names the file and what was wrong.
class io_error : public error {
public:
  using error::error;
};

/// Autograd was used in a way that cannot work (backward on a freed graph, on a tensor without grad).
class autograd_error : public error {
public:
  using error::error;
};

} // namespace grad

/// Internal invariant check, compiled out in release builds (NDEBUG). Never for user input.
#ifndef GRAD_ASSERT
#define GRAD_ASSERT(cond) assert(cond)
#endif
