// Tests of grad/optim/schedule.hpp: lr sequences against values computed by hand from PyTorch's
// formulas, plateau logic step by step, validation, state round trips, and the training loop of
// docs/optimizers.md compiled and run.
#include <doctest/doctest.h>

#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include <grad/grad.hpp>
#include <grad/optim/optim.hpp>

namespace {

namespace optim = grad::optim;

template <class F>
void check_value_error(F&& f, std::initializer_list<std::string> parts) {
  bool thrown = false;
  try {
    f();
  } catch (const grad::value_error& e) {
    thrown = true;
    const std::string what = e.what();
    for (const auto& p : parts) {
      INFO("message: " << what);
      CHECK(what.find(p) != std::string::npos);
    }
  }
  CHECK(thrown);
}

// The smallest thing a schedule can drive: the lr_optimizer concept needs only lr() and set_lr().
struct fake_optimizer {
  double value = 1.0;
  double lr() const { return value; }
  void set_lr(double x) { value = x; }
};

// Checks that the lr after construction, then after each step(), follows `want`.
template <class S>
void check_sequence(S& sched, fake_optimizer& opt, std::initializer_list<double> want) {
  int e = 0;
  for (double w : want) {
    INFO("epoch " << e);
    CHECK(opt.lr() == doctest::Approx(w).epsilon(1e-12));
    CHECK(sched.get_lr() == doctest::Approx(w).epsilon(1e-12));
    CHECK(sched.last_epoch() == e);
    sched.step();
    ++e;
  }
}

} // namespace

TEST_CASE("step_lr: base_lr * gamma^floor(epoch / step_size)") {
  fake_optimizer opt{1.0};
  optim::step_lr sched(opt, {.step_size = 3, .gamma = 0.5});
  check_sequence(sched, opt, {1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125});
  CHECK(sched.base_lr() == 1.0);
}

TEST_CASE("exponential_lr: base_lr * gamma^epoch") {
  fake_optimizer opt{0.1};
  optim::exponential_lr sched(opt, {.gamma = 0.5});
  check_sequence(sched, opt, {0.1, 0.05, 0.025, 0.0125, 0.00625});
}

TEST_CASE("cosine_annealing_lr: half a cosine from base_lr to eta_min, then back up") {
  fake_optimizer opt{1.0};
  optim::cosine_annealing_lr sched(opt, {.t_max = 4});
  // (1 + cos(pi e / 4)) / 2 for e = 0..6: cos(pi/4) = 0.7071067811865476.
  check_sequence(sched, opt,
                 {1.0, 0.8535533905932737, 0.5, 0.1464466094067262, 0.0, 0.1464466094067262, 0.5});

  fake_optimizer opt2{1.0};
  optim::cosine_annealing_lr with_min(opt2, {.t_max = 4, .eta_min = 0.1});
  check_sequence(with_min, opt2,
                 {1.0, 0.1 + 0.9 * 0.8535533905932737, 0.55, 0.1 + 0.9 * 0.1464466094067262, 0.1});
}

TEST_CASE("warmup_cosine_lr: linear warm-up, cosine decay, then min_lr") {
  fake_optimizer opt{1.0};
  optim::warmup_cosine_lr sched(opt, {.warmup_steps = 4, .total_steps = 8, .min_lr = 0.1});
  // t < 4: (t + 1) / 4; 4 <= t < 8: 0.1 + 0.9 (1 + cos(pi (t - 4) / 4)) / 2; t >= 8: 0.1.
  check_sequence(sched, opt,
                 {0.25, 0.5, 0.75, 1.0, 1.0, 0.8681980515339464, 0.55, 0.2318019484660536, 0.1, 0.1});
  CHECK(sched.lr_at(1000) == 0.1);

  fake_optimizer opt2{2.0};
  optim::warmup_cosine_lr no_warmup(opt2, {.total_steps = 2});
  check_sequence(no_warmup, opt2, {2.0, 1.0, 0.0, 0.0});
}

TEST_CASE("reduce_lr_on_plateau: min mode, relative threshold, patience and cooldown") {
  fake_optimizer opt{1.0};
  optim::reduce_lr_on_plateau sched(opt, {.factor = 0.5, .patience = 2, .threshold = 0.1, .cooldown = 1});
  CHECK(sched.best() == INFINITY);
  // metric, then the lr after step(metric), worked by hand from ReduceLROnPlateau.step:
  // 10: best 10. 9.5 is not < 10 * 0.9: bad 1, 2, then 3 > patience: lr 0.5, cooldown 1.
  // next 9.5: bad 1 but cooldown -> 0 clears it; then bad 1, 2, 3 -> lr 0.25. 8 < 9: best 8.
  const double metrics[] = {10, 9.5, 9.5, 9.5, 9.5, 9.5, 9.5, 9.5, 8};
  const double want[] = {1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25};
  for (int i = 0; i < 9; ++i) {
    sched.step(metrics[i]);
    INFO("epoch " << i + 1);
    CHECK(opt.lr() == want[i]);
    CHECK(sched.get_lr() == want[i]);
  }
  CHECK(sched.best() == 8);
  CHECK(sched.num_bad_epochs() == 0);
  CHECK(sched.last_epoch() == 9);
  CHECK_FALSE(sched.in_cooldown());
}

TEST_CASE("reduce_lr_on_plateau: max mode, absolute threshold, min_lr and eps") {
  fake_optimizer opt{0.1};
  optim::reduce_lr_on_plateau sched(opt, {.mode = optim::plateau_mode::max,
                                          .factor = 0.1,
                                          .patience = 0,
                                          .threshold = 0.05,
                                          .threshold_mode = optim::threshold_kind::abs,
                                          .min_lr = 0.05});
  sched.step(0.5);  // best 0.5
  sched.step(0.56); // 0.56 > 0.55: best 0.56
  CHECK(opt.lr() == 0.1);
  sched.step(0.58); // not > 0.61: bad 1 > 0 -> lr max(0.01, 0.05) = 0.05
  CHECK(opt.lr() == 0.05);
  CHECK(sched.best() == 0.56);
  sched.step(0.1); // bad again, but max(0.005, 0.05) = 0.05 is no reduction larger than eps
  CHECK(opt.lr() == 0.05);
}

TEST_CASE("schedules drive real optimizers") {
  auto w = grad::zeros<float>({3}, {.requires_grad = true});
  optim::adam opt({w}, {.lr = 0.1});
  optim::step_lr sched(opt, {.step_size = 2, .gamma = 0.1});
  for (int i = 0; i < 4; ++i) {
    w.grad().data()[0] = 1;
    opt.step();
    sched.step();
  }
  CHECK(opt.lr() == doctest::Approx(0.001));
  optim::reduce_lr_on_plateau plateau(opt, {.patience = 0});
  plateau.step(1.0);
  plateau.step(2.0);
  CHECK(opt.lr() == doctest::Approx(0.0001));
  static_assert(optim::lr_optimizer<optim::sgd<double>>);
  static_assert(optim::lr_optimizer<fake_optimizer>);
}

TEST_CASE("schedule options are validated") {
  fake_optimizer opt;
  check_value_error([&] { optim::step_lr(opt, {}); }, {"step_lr", "step_size", "0", ">= 1"});
  check_value_error([&] { optim::step_lr(opt, {.step_size = 1, .gamma = -0.5}); }, {"gamma", "-0.5"});
  check_value_error([&] { optim::exponential_lr(opt, {}); }, {"exponential_lr", "gamma", "0", "> 0"});
  check_value_error([&] { optim::cosine_annealing_lr(opt, {.t_max = 0}); }, {"t_max", "0"});
  check_value_error([&] { optim::cosine_annealing_lr(opt, {.t_max = 5, .eta_min = -1}); }, {"eta_min", "-1"});
  check_value_error([&] { optim::warmup_cosine_lr(opt, {.warmup_steps = 10, .total_steps = 5}); },
                    {"warmup_steps", "10", "<= total_steps (5)"});
  check_value_error([&] { optim::warmup_cosine_lr(opt, {.warmup_steps = -1, .total_steps = 5}); },
                    {"warmup_steps", "-1"});
  check_value_error([&] { optim::reduce_lr_on_plateau(opt, {.factor = 1.0}); },
                    {"reduce_lr_on_plateau", "factor", "1", "[0, 1)"});
  check_value_error([&] { optim::reduce_lr_on_plateau(opt, {.patience = -1}); }, {"patience", "-1"});
  check_value_error([&] { optim::reduce_lr_on_plateau(opt, {.cooldown = -2}); }, {"cooldown", "-2"});
  check_value_error([&] { optim::reduce_lr_on_plateau(opt, {.threshold = -0.1}); }, {"threshold", "-0.1"});
  CHECK(opt.lr() == 1.0); // a rejected schedule does not touch the lr
}

TEST_CASE("schedule state round trip") {
  fake_optimizer opt{1.0};
  optim::warmup_cosine_lr sched(opt, {.warmup_steps = 3, .total_steps = 20});
  for (int i = 0; i < 7; ++i)
    sched.step();
  const auto saved = sched.state_dict();
  CHECK(saved[0].first == "scheduler.warmup_cosine_lr");

  fake_optimizer opt2{opt.lr()};
  optim::warmup_cosine_lr resumed(opt2, {.warmup_steps = 3, .total_steps = 20});
  resumed.load_state_dict(saved);
  CHECK(resumed.last_epoch() == 7);
  CHECK(resumed.base_lr() == 1.0);
  for (int i = 0; i < 5; ++i) {
    sched.step();
    resumed.step();
    CHECK(opt2.lr() == opt.lr());
  }
  optim::step_lr other(opt, {.step_size = 2});
  check_value_error([&] { other.load_state_dict(saved); }, {"step_lr", "saved by warmup_cosine_lr"});

  fake_optimizer opt3{1.0};
  optim::reduce_lr_on_plateau plateau(opt3, {.patience = 1});
  plateau.step(3.0);
  plateau.step(4.0);
  const auto ps = plateau.state_dict<float>();
  optim::reduce_lr_on_plateau plateau2(opt3, {.patience = 1});
  plateau2.load_state_dict(ps);
  CHECK(plateau2.best() == 3.0);
  CHECK(plateau2.num_bad_epochs() == 1);
  plateau.step(5.0);
  plateau2.step(5.0); // both reduce now; opt3 is shared, so compare the counters
  CHECK(plateau2.num_bad_epochs() == plateau.num_bad_epochs());
  check_value_error([&] { plateau2.load_state_dict(saved); }, {"saved by warmup_cosine_lr"});
}

// The training loop of docs/optimizers.md, verbatim between the markers.
TEST_CASE("docs/optimizers.md training loop") {
  auto x = grad::linspace<float>(-1, 1, 64);
  auto y = x * 3.0f - 0.5f;
  // --- docs/optimizers.md: training loop ---
  auto w = grad::zeros<float>({1}, {.requires_grad = true});
  auto b = grad::zeros<float>({1}, {.requires_grad = true});
  std::vector<grad::tensor> params{w, b}; // what a module's parameters() returns

  grad::optim::adamw opt(params, {.lr = 0.1, .weight_decay = 1e-4});
  grad::optim::warmup_cosine_lr sched(opt, {.warmup_steps = 20, .total_steps = 400, .min_lr = 1e-3});

  for (int step = 0; step < 400; ++step) {
    auto loss = grad::mean(grad::square(w * x + b - y));
    opt.zero_grad();
    loss.backward();
    grad::optim::clip_grad_norm(params, 1.0); // optional: returns the norm before clipping
    opt.step();
    sched.step(); // after opt.step(), once per step
  }
  // --- end ---
  CHECK(w.item() == doctest::Approx(3.0f).epsilon(1e-2));
  CHECK(b.item() == doctest::Approx(-0.5f).epsilon(1e-2));

  // --- docs/optimizers.md: saving ---
  auto state = opt.state_dict(); // std::vector<std::pair<std::string, xt::xarray<float>>>
  auto sched_state = sched.state_dict<float>();
  // ... later, with an optimizer and schedule built the same way over the same parameters:
  opt.load_state_dict(state);
  sched.load_state_dict(sched_state);
  // --- end ---
  CHECK(sched.last_epoch() == 400);
}
