#pragma once
/// @file grad.hpp
/// The umbrella header of grad: include this and use namespace grad.

#include "grad/config.hpp"
#include "grad/core/apply.hpp"
#include "grad/core/error.hpp"
#include "grad/core/factories.hpp"
#include "grad/core/generator.hpp"
#include "grad/core/gradcheck.hpp"
#include "grad/core/print.hpp"
#include "grad/core/shape.hpp"
#include "grad/core/tape.hpp"
#include "grad/core/tensor.hpp"
#include "grad/ops/arithmetic.hpp"
#include "grad/ops/compare.hpp"
#include "grad/ops/join.hpp"
#include "grad/ops/matmul.hpp"
#include "grad/ops/movement.hpp"
#include "grad/ops/reduce.hpp"
#include "grad/ops/unary.hpp"
