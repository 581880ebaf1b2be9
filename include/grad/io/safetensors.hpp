#pragma once
/// @file io/safetensors.hpp
/// Saving and loading parameters in the safetensors format: `save(net, "model.safetensors")`,
/// `load(net, "model.safetensors")`. Files interoperate with `safetensors.torch.load_file` and
/// `safetensors.numpy.load_file`.

#include <bit>
#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/core/tensor.hpp"
#include "grad/io/safetensors_format.hpp"

namespace grad::io {

/// Tensors with names, as `named_parameters()` returns them (`h.0.attn.c_attn.weight`, ...).
template <element T>
using named_tensors = std::vector<std::pair<std::string, basic_tensor<T>>>;

namespace detail {
template <class V>
struct named_tensors_traits : std::false_type {};
template <element T>
struct named_tensors_traits<std::vector<std::pair<std::string, basic_tensor<T>>>> : std::true_type {
  using value_type = T;
};
} // namespace detail

/// Anything with `named_parameters()` returning named_tensors<T>: a module in the sense of save/load.
template <class M>
concept has_named_parameters = requires(M& m) {
  m.named_parameters();
}
&&detail::named_tensors_traits<std::remove_cvref_t<decltype(std::declval<M&>().named_parameters())>>::value;

/// Options of save().
struct save_options {
  metadata_map metadata; ///< stored as the file's `__metadata__` (string -> string)
};

/// Options of load().
struct load_options {
  /// true: every tensor of the module must be in the file and every tensor of the file in the module.
  /// false: missing and unexpected tensors are skipped and returned in load_result. Mis-shaped tensors
  /// are an error either way (as in PyTorch's load_state_dict).
  bool strict = true;
};

/// What load() skipped (only ever non-empty with strict = false).
struct load_result {
  std::vector<std::string> missing_keys;    ///< in the module, not in the file: left unchanged
  std::vector<std::string> unexpected_keys; ///< in the file, not in the module: ignored
};

/// Saves named tensors (F32 for float, F64 for double) to a safetensors file, atomically.
template <element T>
void save(const named_tensors<T>& tensors, const std::filesystem::path& path, const save_options& opt = {}) {
  std::vector<raw_tensor> raw;
  std::vector<std::vector<std::byte>> swapped; // only used on big-endian hosts
  raw.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    if (!t.defined())
      throw value_error(detail::file_message("save", path, "tensor '" + name + "' is undefined"));
    std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(t.data()), t.numel() * sizeof(T));
    if constexpr (std::endian::native != std::endian::little) {
      struct sink {
        std::vector<std::byte>& v;
        void write(const void* p, std::size_t n) {
          v.insert(v.end(), static_cast<const std::byte*>(p), static_cast<const std::byte*>(p) + n);
        }
      };
      sink s{swapped.emplace_back()};
      detail::write_le(s, t.data(), t.numel());
      bytes = swapped.back();
    }
    raw.push_back({name, dtype_of<T>(), t.shape(), bytes});
  }
  detail::write_safetensors(path, raw, opt.metadata, "save");
}

/// Saves a module's named_parameters() to a safetensors file, atomically.
template <class M>
requires has_named_parameters<std::remove_reference_t<M>>
void save(M&& module, const std::filesystem::path& path, const save_options& opt = {}) {
  save(module.named_parameters(), path, opt);
}

/// Loads a safetensors file into named tensors in place (their storage is shared with the module),
/// converting from the file's dtype. Everything is checked before anything is written: on error the
/// tensors are unchanged and ONE io_error lists every missing, unexpected and mis-shaped tensor.
template <element T>
load_result load(const named_tensors<T>& tensors, const std::filesystem::path& path,
                 const load_options& opt = {}) {
  constexpr std::string_view who = "load";
  detail::mapped_file f(path, who);
  const auto h = detail::parse_safetensors_header(f.bytes(), path, who);
  std::unordered_map<std::string_view, const tensor_info*> in_file;
  for (const auto& [name, info] : h.tensors)
    in_file.emplace(name, &info);

  load_result result;
  std::vector<std::string> misshaped;
  std::unordered_set<std::string_view> wanted;
  for (const auto& [name, t] : tensors) {
    if (!wanted.insert(name).second)
      throw value_error(detail::file_message(who, path, "two destination tensors are named '" + name + "'"));
    if (!t.defined())
      throw value_error(detail::file_message(who, path, "destination tensor '" + name + "' is undefined"));
    auto it = in_file.find(name);
    if (it == in_file.end())
      result.missing_keys.push_back(name);
    else if (it->second->shape != t.shape())
      misshaped.push_back(name + " (file " + to_string(it->second->shape) + ", module " +
                          to_string(t.shape()) + ")");
  }
  for (const auto& [name, info] : h.tensors)
    if (!wanted.contains(name))
      result.unexpected_keys.push_back(name);

  const bool report_keys = opt.strict && (!result.missing_keys.empty() || !result.unexpected_keys.empty());
  if (report_keys || !misshaped.empty()) {
    std::string m = "does not match the module:";
    auto list = [&](const std::vector<std::string>& names, const char* what) {
      if (names.empty())
        return;
      m += " " + std::to_string(names.size()) + " " + what + ": ";
      for (std::size_t i = 0; i < names.size(); ++i)
        m += (i ? ", " : "") + names[i];
      m += ";";
    };
    if (opt.strict) {
      list(result.missing_keys, "missing (in the module, not in the file)");
      list(result.unexpected_keys, "unexpected (in the file, not in the module)");
    }
    list(misshaped, "mis-shaped");
    m += " nothing was loaded";
    if (report_keys)
      m += "; pass {.strict = false} to skip missing and unexpected tensors";
    throw io_error(detail::file_message(who, path, m));
  }

  const std::byte* data = f.bytes().data() + h.data_offset;
  for (const auto& [name, t] : tensors) {
    auto it = in_file.find(name);
    if (it == in_file.end())
      continue;
    basic_tensor<T> dst = t; // a handle copy shares the storage
    detail::convert_le<T>(data + it->second->begin, it->second->type, dst.data(), dst.numel());
  }
  return result;
}

/// Loads a safetensors file into a module's named_parameters(), in place; see the overload above.
template <class M>
requires has_named_parameters<std::remove_reference_t<M>>
    load_result load(M&& module, const std::filesystem::path& path, const load_options& opt = {}) {
  return load(module.named_parameters(), path, opt);
}

} // namespace grad::io
