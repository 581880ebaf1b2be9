#pragma once
/// @file optim/schedule.hpp
/// Learning-rate schedules (torch.optim.lr_scheduler): step, exponential, cosine annealing, linear
/// warm-up then cosine, and reduce-on-plateau. Each drives any optimizer with lr()/set_lr().

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>
#include <string_view>

#include "grad/core/error.hpp"
#include "grad/optim/optimizer.hpp"

namespace grad::optim {

/// Options of step_lr: lr = base_lr * gamma^floor(epoch / step_size).
struct step_lr_options {
  std::int64_t step_size = 0; ///< epochs between two decays, >= 1 (required)
  double gamma = 0.1;         ///< multiplicative factor, > 0
};

/// Options of exponential_lr: lr = base_lr * gamma^epoch.
struct exponential_lr_options {
  double gamma = 0; ///< multiplicative factor per epoch, > 0 (required)
};

/// Options of cosine_annealing_lr: lr = eta_min + (base_lr - eta_min) (1 + cos(pi epoch / t_max)) / 2.
struct cosine_annealing_lr_options {
  std::int64_t t_max = 0; ///< epochs of a half period, >= 1 (required)
  double eta_min = 0;     ///< lowest lr, >= 0
};

/// Options of warmup_cosine_lr: linear warm-up to base_lr, then cosine decay to min_lr.
struct warmup_cosine_lr_options {
  std::int64_t warmup_steps = 0; ///< steps of linear warm-up, in [0, total_steps]
  std::int64_t total_steps = 0;  ///< step at which the lr reaches min_lr, >= 1 (required)
  double min_lr = 0;             ///< lr at and after total_steps, >= 0
};

/// Whether reduce_lr_on_plateau waits for the metric to go down (a loss) or up (an accuracy).
enum class plateau_mode { min, max };
/// How reduce_lr_on_plateau measures a significant improvement: relative or absolute threshold.
enum class threshold_kind { rel, abs };

/// Options of reduce_lr_on_plateau (PyTorch's ReduceLROnPlateau defaults).
struct reduce_lr_on_plateau_options {
  plateau_mode mode = plateau_mode::min; ///< min: lower is better; max: higher is better
  double factor = 0.1;                   ///< new_lr = lr * factor, in [0, 1)
  std::int64_t patience = 10;            ///< bad epochs tolerated before a reduction, >= 0
  double threshold = 1e-4;               ///< minimal significant improvement, >= 0
  threshold_kind threshold_mode =
      threshold_kind::rel;   ///< rel: best * (1 -/+ threshold); abs: best -/+ threshold
  std::int64_t cooldown = 0; ///< epochs to wait after a reduction, >= 0
  double min_lr = 0;         ///< lower bound of the lr, >= 0
  double eps = 1e-8;         ///< reductions smaller than eps are skipped, >= 0
};

namespace detail {

inline void require_count(std::string_view who, std::string_view option, std::int64_t v, std::int64_t lo) {
  require(v >= lo, who, option, static_cast<double>(v), ">= " + std::to_string(lo));
}

/// Reads the one number of entry `key` of a schedule's state.
template <class T>
double read_number(const std::string& who, const named_arrays<T>& sd, const std::string& key) {
  for (const auto& [k, a] : sd)
    if (k == key) {
      double v = 0;
      decode(who, key, a, v);
      return v;
    }
  throw value_error(who + ": the state has no entry '" + key + "'");
}

/// Checks the "scheduler.<name>" marker of a schedule's state.
template <class T>
void check_marker(const std::string& who, std::string_view name, const named_arrays<T>& sd) {
  const std::string marker = "scheduler." + std::string(name);
  for (const auto& [k, a] : sd)
    if (k == marker)
      return;
  for (const auto& [k, a] : sd)
    if (k.rfind("scheduler.", 0) == 0)
      throw value_error(who + ": this state was saved by " + k.substr(10) + ", not " + std::string(name));
  throw value_error(who + ": not a schedule state (no '" + marker + "' entry)");
}

/// A schedule whose lr is a function of the epoch (CRTP; Derived has `name` and `lr_at(epoch)`).
/// Like PyTorch, construction records base_lr = opt.lr() and sets the lr of epoch 0.
template <class Derived, class O>
class closed_form_schedule {
public:
  /// Advances one epoch (or step, for per-step schedules) and sets the optimizer's lr; call it after
  /// `opt.step()`.
  void step() {
    ++epoch_;
    apply();
  }
  /// The lr this schedule set last (PyTorch's get_last_lr()).
  double get_lr() const noexcept { return last_lr_; }
  /// The number of step() calls so far (PyTorch's last_epoch).
  std::int64_t last_epoch() const noexcept { return epoch_; }
  /// The optimizer's lr when the schedule was created.
  double base_lr() const noexcept { return base_lr_; }

  /// The schedule's state: "scheduler.<name>", "last_epoch", "base_lr", "last_lr".
  template <class T = double>
  named_arrays<T> state_dict() const {
    named_arrays<T> out;
    out.emplace_back("scheduler." + std::string(Derived::name), scalar_array<T>(1));
    out.emplace_back("last_epoch", scalar_array<T>(static_cast<double>(epoch_)));
    out.emplace_back("base_lr", scalar_array<T>(base_lr_));
    out.emplace_back("last_lr", scalar_array<T>(last_lr_));
    return out;
  }
  /// Restores a state_dict() of the same schedule type; the optimizer's lr comes from its own state.
  template <class T>
  void load_state_dict(const named_arrays<T>& sd) {
    const std::string who = std::string(Derived::name) + ": load_state_dict";
    check_marker(who, Derived::name, sd);
    const double e = read_number(who, sd, "last_epoch");
    const double base = read_number(who, sd, "base_lr"), last = read_number(who, sd, "last_lr");
    if (!(e >= 0 && e == std::floor(e) && e < 9e15))
      throw value_error(who + ": last_epoch must be a whole number >= 0, not " + num(e));
    require_non_negative(who, "base_lr", base);
    require_non_negative(who, "last_lr", last);
    epoch_ = static_cast<std::int64_t>(e);
    base_lr_ = base;
    last_lr_ = last;
  }

protected:
  explicit closed_form_schedule(O& opt) : opt_(&opt), base_lr_(static_cast<double>(opt.lr())) {}
  /// Sets the lr of the current epoch (the derived constructor calls it once its options are checked).
  void apply() {
    last_lr_ = static_cast<const Derived&>(*this).lr_at(epoch_);
    opt_->set_lr(last_lr_);
  }

private:
  O* opt_;
  double base_lr_;
  double last_lr_ = 0;
  std::int64_t epoch_ = 0;
};

} // namespace detail

/// Decays the lr by gamma every step_size epochs: `step_lr sched(opt, {.step_size = 30, .gamma = 0.1});`.
template <lr_optimizer O>
class step_lr : public detail::closed_form_schedule<step_lr<O>, O> {
public:
  /// Name used in errors and in the saved state.
  static constexpr std::string_view name = "step_lr";
  /// Drives `opt` (which must outlive the schedule) and sets its lr for epoch 0.
  step_lr(O& opt, step_lr_options o) : detail::closed_form_schedule<step_lr<O>, O>(opt), o_(o) {
    detail::require_count(name, "step_size", o_.step_size, 1);
    detail::require_positive(name, "gamma", o_.gamma);
    this->apply();
  }
  /// The lr at `epoch`: base_lr * gamma^floor(epoch / step_size) (PyTorch StepLR's closed form).
  double lr_at(std::int64_t epoch) const {
    return this->base_lr() * std::pow(o_.gamma, static_cast<double>(epoch / o_.step_size));
  }

private:
  step_lr_options o_;
};

/// Decays the lr by gamma every epoch: `exponential_lr sched(opt, {.gamma = 0.95});`.
template <lr_optimizer O>
class exponential_lr : public detail::closed_form_schedule<exponential_lr<O>, O> {
public:
  /// Name used in errors and in the saved state.
  static constexpr std::string_view name = "exponential_lr";
  /// Drives `opt` (which must outlive the schedule) and sets its lr for epoch 0.
  exponential_lr(O& opt, exponential_lr_options o)
      : detail::closed_form_schedule<exponential_lr<O>, O>(opt), o_(o) {
    detail::require_positive(name, "gamma", o_.gamma);
    this->apply();
  }
  /// The lr at `epoch`: base_lr * gamma^epoch (PyTorch ExponentialLR's closed form).
  double lr_at(std::int64_t epoch) const {
    return this->base_lr() * std::pow(o_.gamma, static_cast<double>(epoch));
  }

private:
  exponential_lr_options o_;
};

/// Cosine annealing from base_lr down to eta_min over t_max epochs (SGDR, Loshchilov & Hutter 2017,
/// without restarts): `cosine_annealing_lr sched(opt, {.t_max = 100});`.
template <lr_optimizer O>
class cosine_annealing_lr : public detail::closed_form_schedule<cosine_annealing_lr<O>, O> {
public:
  /// Name used in errors and in the saved state.
  static constexpr std::string_view name = "cosine_annealing_lr";
  /// Drives `opt` (which must outlive the schedule) and sets its lr for epoch 0.
  cosine_annealing_lr(O& opt, cosine_annealing_lr_options o)
      : detail::closed_form_schedule<cosine_annealing_lr<O>, O>(opt), o_(o) {
    detail::require_count(name, "t_max", o_.t_max, 1);
    detail::require_non_negative(name, "eta_min", o_.eta_min);
    this->apply();
  }
  /// The lr at `epoch`: eta_min + (base_lr - eta_min) (1 + cos(pi epoch / t_max)) / 2. Past t_max it
  /// rises again along the same cosine, as PyTorch's CosineAnnealingLR does.
  double lr_at(std::int64_t epoch) const {
    const double c = std::cos(std::numbers::pi * static_cast<double>(epoch) / static_cast<double>(o_.t_max));
    return o_.eta_min + (this->base_lr() - o_.eta_min) * (1 + c) / 2;
  }

private:
  cosine_annealing_lr_options o_;
};

/// Linear warm-up, then cosine decay (the GPT-2/3 recipe; PyTorch builds it from LinearLR +
/// CosineAnnealingLR): `warmup_cosine_lr sched(opt, {.warmup_steps = 100, .total_steps = 5000, .min_lr =
/// 3e-5});`, stepped once per optimizer step.
template <lr_optimizer O>
class warmup_cosine_lr : public detail::closed_form_schedule<warmup_cosine_lr<O>, O> {
public:
  /// Name used in errors and in the saved state.
  static constexpr std::string_view name = "warmup_cosine_lr";
  /// Drives `opt` (which must outlive the schedule) and sets its lr for step 0.
  warmup_cosine_lr(O& opt, warmup_cosine_lr_options o)
      : detail::closed_form_schedule<warmup_cosine_lr<O>, O>(opt), o_(o) {
    detail::require_count(name, "total_steps", o_.total_steps, 1);
    detail::require_count(name, "warmup_steps", o_.warmup_steps, 0);
    detail::require(o_.warmup_steps <= o_.total_steps, name, "warmup_steps",
                    static_cast<double>(o_.warmup_steps),
                    "<= total_steps (" + std::to_string(o_.total_steps) + ")");
    detail::require_non_negative(name, "min_lr", o_.min_lr);
    this->apply();
  }
  /// The lr used by optimizer step `t` (0-based): base_lr (t + 1) / warmup_steps while t < warmup_steps,
  /// then min_lr + (base_lr - min_lr) (1 + cos(pi (t - warmup_steps) / (total_steps - warmup_steps))) / 2,
  /// and min_lr from total_steps on.
  double lr_at(std::int64_t t) const {
    const double base = this->base_lr();
    if (t < o_.warmup_steps)
      return base * static_cast<double>(t + 1) / static_cast<double>(o_.warmup_steps);
    if (t >= o_.total_steps)
      return o_.min_lr;
    const double progress =
        static_cast<double>(t - o_.warmup_steps) / static_cast<double>(o_.total_steps - o_.warmup_steps);
    return o_.min_lr + (base - o_.min_lr) * (1 + std::cos(std::numbers::pi * progress)) / 2;
  }

private:
  warmup_cosine_lr_options o_;
};

/// Divides the lr by 1/factor when a metric stops improving for `patience` epochs:
/// `reduce_lr_on_plateau sched(opt, {.factor = 0.5, .patience = 5});` then `sched.step(val_loss)`.
template <lr_optimizer O>
class reduce_lr_on_plateau {
public:
  /// Name used in errors and in the saved state.
  static constexpr std::string_view name = "reduce_lr_on_plateau";

  /// Watches a metric for `opt` (which must outlive the schedule); the lr is unchanged until a plateau.
  explicit reduce_lr_on_plateau(O& opt, reduce_lr_on_plateau_options o = {})
      : opt_(&opt), o_(o), last_lr_(static_cast<double>(opt.lr())) {
    detail::require(o_.factor >= 0 && o_.factor < 1, name, "factor", o_.factor, "in [0, 1)");
    detail::require_count(name, "patience", o_.patience, 0);
    detail::require_non_negative(name, "threshold", o_.threshold);
    detail::require_count(name, "cooldown", o_.cooldown, 0);
    detail::require_non_negative(name, "min_lr", o_.min_lr);
    detail::require_non_negative(name, "eps", o_.eps);
    best_ = worst();
  }

  /// Records this epoch's metric and reduces the lr after more than `patience` bad epochs
  /// (PyTorch's ReduceLROnPlateau.step: cooldown epochs count as good ones).
  void step(double metric) {
    ++epoch_;
    if (is_better(metric)) {
      best_ = metric;
      bad_ = 0;
    } else {
      ++bad_;
    }
    if (cooldown_counter_ > 0) {
      --cooldown_counter_;
      bad_ = 0;
    }
    if (bad_ > o_.patience) {
      const double old_lr = static_cast<double>(opt_->lr());
      const double new_lr = std::max(old_lr * o_.factor, o_.min_lr);
      if (old_lr - new_lr > o_.eps)
        opt_->set_lr(new_lr);
      cooldown_counter_ = o_.cooldown;
      bad_ = 0;
    }
    last_lr_ = static_cast<double>(opt_->lr());
  }

  /// The optimizer's lr after the last step() (PyTorch's get_last_lr()).
  double get_lr() const noexcept { return last_lr_; }
  /// The best metric seen so far (+inf in min mode, -inf in max mode before the first step).
  double best() const noexcept { return best_; }
  /// Consecutive epochs without a significant improvement.
  std::int64_t num_bad_epochs() const noexcept { return bad_; }
  /// True while waiting after a reduction.
  bool in_cooldown() const noexcept { return cooldown_counter_ > 0; }
  /// The number of step() calls so far.
  std::int64_t last_epoch() const noexcept { return epoch_; }

  /// The schedule's state: "scheduler.reduce_lr_on_plateau", "last_epoch", "best", "num_bad_epochs",
  /// "cooldown_counter", "last_lr".
  template <class T = double>
  named_arrays<T> state_dict() const {
    named_arrays<T> out;
    out.emplace_back("scheduler." + std::string(name), detail::scalar_array<T>(1));
    out.emplace_back("last_epoch", detail::scalar_array<T>(static_cast<double>(epoch_)));
    out.emplace_back("best", detail::scalar_array<T>(best_));
    out.emplace_back("num_bad_epochs", detail::scalar_array<T>(static_cast<double>(bad_)));
    out.emplace_back("cooldown_counter", detail::scalar_array<T>(static_cast<double>(cooldown_counter_)));
    out.emplace_back("last_lr", detail::scalar_array<T>(last_lr_));
    return out;
  }
  /// Restores a state_dict() of a reduce_lr_on_plateau; the options stay those of the constructor.
  template <class T>
  void load_state_dict(const named_arrays<T>& sd) {
    const std::string who = std::string(name) + ": load_state_dict";
    detail::check_marker(who, name, sd);
    auto count = [&](const std::string& key) {
      const double v = detail::read_number(who, sd, key);
      if (!(v >= 0 && v == std::floor(v) && v < 9e15))
        throw value_error(who + ": entry '" + key + "' must be a whole number >= 0, not " + detail::num(v));
      return static_cast<std::int64_t>(v);
    };
    const std::int64_t e = count("last_epoch"), bad = count("num_bad_epochs"),
                       cool = count("cooldown_counter");
    const double best = detail::read_number(who, sd, "best"), last = detail::read_number(who, sd, "last_lr");
    detail::require_non_negative(who, "last_lr", last);
    epoch_ = e;
    bad_ = bad;
    cooldown_counter_ = cool;
    best_ = best;
    last_lr_ = last;
  }

private:
  double worst() const {
    const double inf = std::numeric_limits<double>::infinity();
    return o_.mode == plateau_mode::min ? inf : -inf;
  }

  // PyTorch's ReduceLROnPlateau._is_better.
  bool is_better(double a) const {
    const bool rel = o_.threshold_mode == threshold_kind::rel;
    if (o_.mode == plateau_mode::min)
      return rel ? a < best_ * (1 - o_.threshold) : a < best_ - o_.threshold;
    return rel ? a > best_ * (1 + o_.threshold) : a > best_ + o_.threshold;
  }

  O* opt_;
  reduce_lr_on_plateau_options o_;
  double last_lr_;
  double best_ = 0;
  std::int64_t bad_ = 0;
  std::int64_t cooldown_counter_ = 0;
  std::int64_t epoch_ = 0;
};

} // namespace grad::optim
