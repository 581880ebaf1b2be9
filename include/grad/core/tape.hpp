#pragma once
/// @file core/tape.hpp
/// The reverse-mode tape (DESIGN.md section 3): a flat, thread-local list of nodes in creation order,
/// allocated from an arena, plus grad mode, `no_grad` and `tape_scope`.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string_view>
#include <utility>
#include <vector>

#include "grad/core/error.hpp"

namespace grad {
namespace detail {

/// One recorded op. Concrete nodes (op_node in core/apply.hpp) know the op and the tensors.
struct node {
  std::string_view name;   // the op's name, for errors and the profiler
  std::uint64_t flops = 0; // forward FLOPs of this call
  std::uint64_t bytes = 0; // bytes read and written by the forward
  std::size_t index = 0;   // position on the tape
  void* out = nullptr;     // the output's tensor_impl<T> while a handle to it lives (it clears this)
  node() = default;
  node(const node&) = delete;
  node& operator=(const node&) = delete;
  virtual ~node() = default;
  /// Runs the op's backward: reads the output's gradient, accumulates into the inputs' gradients.
  virtual void backward() = 0;
  /// FLOPs of this node's backward (for the profiler).
  virtual std::uint64_t backward_flops() const { return flops; }
  /// False once nothing can read the output any more (no handle, no later node): the node is dead.
  bool output_alive() const noexcept { return out != nullptr; }
  /// True when the output received a gradient in the current backward pass.
  virtual bool has_output_grad() const noexcept = 0;
  /// Frees the output's gradient after a backward pass, unless the user asked to retain it.
  virtual void release_output_grad() noexcept = 0;
};

/// Bump allocator for nodes: one pointer increment per node, freed all at once.
class arena {
public:
  /// Storage for `size` bytes aligned to `align` (a power of two).
  void* allocate(std::size_t size, std::size_t align) {
    for (;;) {
      if (current_ < chunks_.size()) {
        const auto base = reinterpret_cast<std::uintptr_t>(chunks_[current_].get());
        const std::size_t p = ((base + used_ + align - 1) & ~(std::uintptr_t(align) - 1)) - base;
        if (p + size <= sizes_[current_]) {
          used_ = p + size;
          return chunks_[current_].get() + p;
        }
        ++current_;
        used_ = 0;
        continue;
      }
      const std::size_t n = std::max<std::size_t>(chunk_bytes, size + align);
      chunks_.push_back(std::make_unique_for_overwrite<std::byte[]>(n));
      sizes_.push_back(n);
    }
  }
  /// Forgets every allocation; keeps the chunks for reuse.
  void reset() noexcept {
    current_ = 0;
    used_ = 0;
  }

private:
  static constexpr std::size_t chunk_bytes = 64 * 1024;
  std::vector<std::unique_ptr<std::byte[]>> chunks_;
  std::vector<std::size_t> sizes_;
  std::size_t current_ = 0;
  std::size_t used_ = 0;
};

inline std::uint64_t next_epoch() noexcept {
  // Thread-local: tapes are thread-local, so epochs only need to be unique per thread.
  thread_local std::uint64_t counter = 0;
  return ++counter;
}

} // namespace detail

/// A recording of ops in creation order. Each thread has a stack of them; the top one records.
class tape {
public:
  tape() = default;
  tape(const tape&) = delete;
  tape& operator=(const tape&) = delete;
  ~tape() { clear(); }

  /// Creates a node of type Node on the tape's arena and appends it.
  template <class Node, class... Args>
  Node* emplace(Args&&... args) {
    if (nodes_.size() >= gc_threshold_)
      collect();
    void* mem = arena_.allocate(sizeof(Node), alignof(Node));
    Node* n = ::new (mem) Node(std::forward<Args>(args)...);
    n->index = nodes_.size();
    nodes_.push_back(n);
    return n;
  }

  /// Destroys every node (freeing the tensors they saved) and starts a new epoch.
  void clear() noexcept {
    for (auto* n : nodes_)
      n->~node();
    nodes_.clear();
    arena_.reset();
    epoch_ = detail::next_epoch();
    gc_threshold_ = min_gc_threshold;
  }

  /// Frees nodes whose outputs can no longer receive a gradient (no handle and no later node reads
  /// them). One reverse walk finds whole dead chains, since destroying a node releases its inputs.
  /// This keeps a loop that forgets `no_grad` from growing the tape without bound.
  void collect() {
    for (std::size_t i = nodes_.size(); i-- > 0;) {
      if (!nodes_[i]->output_alive()) {
        nodes_[i]->~node();
        nodes_[i] = nullptr;
      }
    }
    std::erase(nodes_, nullptr);
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      nodes_[i]->index = i;
    if (nodes_.empty())
      arena_.reset(); // node shells of dead nodes live in the arena: reclaim them when all are gone
    gc_threshold_ = std::max(min_gc_threshold, 2 * nodes_.size());
  }

  /// Number of recorded nodes.
  std::size_t size() const noexcept { return nodes_.size(); }
  /// The recorded nodes in creation order (a topological order).
  const std::vector<detail::node*>& nodes() const noexcept { return nodes_; }
  /// Changes whenever the tape is cleared; tensors remember it to detect freed graphs.
  std::uint64_t epoch() const noexcept { return epoch_; }

private:
  static constexpr std::size_t min_gc_threshold = 1 << 16;
  std::vector<detail::node*> nodes_;
  detail::arena arena_;
  std::uint64_t epoch_ = detail::next_epoch();
  std::size_t gc_threshold_ = min_gc_threshold;
};

namespace detail {

/// The thread's stack of tapes; the bottom one lives as long as the thread.
inline std::vector<std::unique_ptr<tape>>& tape_stack() {
  thread_local std::vector<std::unique_ptr<tape>> stack = [] {
    std::vector<std::unique_ptr<tape>> s;
    s.push_back(std::make_unique<tape>());
    return s;
  }();
  return stack;
}

/// The live tape with this epoch on this thread, or nullptr when that graph was freed.
inline tape* find_tape(std::uint64_t epoch) noexcept {
  for (auto& t : tape_stack())
    if (t->epoch() == epoch)
      return t.get();
  return nullptr;
}

inline bool& grad_mode_flag() noexcept {
  thread_local bool enabled = true;
  return enabled;
}

} // namespace detail

/// The tape that records on this thread now (the innermost tape_scope, or the thread's own).
inline tape& current_tape() {
  return *detail::tape_stack().back();
}

/// True when ops are recorded (the default); false inside `no_grad`.
inline bool is_grad_enabled() noexcept {
  return detail::grad_mode_flag();
}

/// Turns recording on or off for this thread; prefer the `no_grad` guard.
inline void set_grad_enabled(bool on) noexcept {
  detail::grad_mode_flag() = on;
}

/// RAII guard: no op is recorded while it lives (evaluation, optimizer updates).
class no_grad {
public:
  no_grad() noexcept : previous_(is_grad_enabled()) { set_grad_enabled(false); }
  ~no_grad() { set_grad_enabled(previous_); }
  no_grad(const no_grad&) = delete;
  no_grad& operator=(const no_grad&) = delete;

private:
  bool previous_;
};

/// RAII guard that records into a fresh, independent tape while it lives (e.g. a metric computed
/// inside a training step). Its graph is freed when the scope ends; the outer tape is untouched.
class tape_scope {
public:
  tape_scope() {
    detail::tape_stack().push_back(std::make_unique<tape>());
    self_ = detail::tape_stack().back().get();
  }
  ~tape_scope() {
    auto& s = detail::tape_stack();
    GRAD_ASSERT(!s.empty() && s.back().get() == self_);
    s.pop_back();
  }
  tape_scope(const tape_scope&) = delete;
  tape_scope& operator=(const tape_scope&) = delete;
  /// The tape this scope records into.
  tape& get() noexcept { return *self_; }

private:
  tape* self_;
};

} // namespace grad
