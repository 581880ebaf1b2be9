#pragma once
/// @file nn/nn.hpp
/// All of grad::nn: modules, sequential, any_module, init; and the functions they are built on.

#include "grad/core/index_tensor.hpp"
#include "grad/functional/activation.hpp"
#include "grad/functional/loss.hpp"
#include "grad/nn/activation.hpp"
#include "grad/nn/any_module.hpp"
#include "grad/nn/conv.hpp"
#include "grad/nn/embedding.hpp"
#include "grad/nn/init.hpp"
#include "grad/nn/linear.hpp"
#include "grad/nn/module.hpp"
#include "grad/nn/norm.hpp"
#include "grad/nn/sequential.hpp"
