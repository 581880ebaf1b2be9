#pragma once
/// @file optim/optim.hpp
/// All of grad::optim: optimizers (sgd, adam, adamw, rmsprop, adagrad), schedules and gradient clipping.

#include "grad/optim/adagrad.hpp"
#include "grad/optim/adam.hpp"
#include "grad/optim/clip.hpp"
#include "grad/optim/optimizer.hpp"
#include "grad/optim/rmsprop.hpp"
#include "grad/optim/schedule.hpp"
#include "grad/optim/sgd.hpp"
