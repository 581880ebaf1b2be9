#pragma once
/// @file models/gpt_pretrained.hpp
/// Hugging Face GPT-2 checkpoints: `from_pretrained_gpt(dir)` reads a directory holding `config.json`
/// and `model.safetensors` (as `huggingface-cli download gpt2` or `save_pretrained` in transformers
/// leaves it); `save_pretrained(model, dir)` writes one that transformers' `GPT2LMHeadModel
/// .from_pretrained(dir)` loads.
///
/// ```cpp
/// auto model = grad::models::from_pretrained_gpt("models/gpt2");   // float, in eval mode
/// grad::models::save_pretrained(model, "out/my-gpt2");
/// ```

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "grad/core/error.hpp"
#include "grad/core/generator.hpp"
#include "grad/core/shape.hpp"
#include "grad/core/tensor.hpp"
#include "grad/io/dtype.hpp"
#include "grad/io/file.hpp"
#include "grad/io/json.hpp"
#include "grad/io/safetensors_format.hpp"
#include "grad/models/gpt.hpp"

namespace grad::models {

/// What a config.json says beyond gpt_config: the special tokens generation needs.
struct gpt_pretrained_info {
  std::optional<std::int64_t> bos_token_id; ///< `bos_token_id` (50256 for GPT-2), if present
  std::optional<std::int64_t> eos_token_id; ///< `eos_token_id` (50256 for GPT-2), if present
};

/// Options of save_pretrained().
struct gpt_save_options {
  /// Written as bos_token_id / eos_token_id; by default 50256 ("<|endoftext|>") when the vocabulary
  /// has GPT-2's 50257 tokens, otherwise omitted.
  std::optional<std::int64_t> bos_token_id{}, eos_token_id{};
};

namespace detail {

inline const json::value* config_member(const json::value& root, std::string_view key) {
  const json::value* v = root.find(key);
  return v && !v->is_null() ? v : nullptr;
}

} // namespace detail

/// Parses a transformers GPT2Config (the object in config.json) into a gpt_config, with GPT2Config's
/// defaults for absent fields. Throws io_error naming `file` for a wrong type, an unsupported option
/// (another model_type, n_inner other than 4 n_embd, cross-attention, per-layer attention scaling) or
/// an invalid configuration.
inline gpt_config gpt_config_from_json(const json::value& root, const std::filesystem::path& file,
                                       gpt_pretrained_info* info = nullptr) {
  constexpr std::string_view who = "from_pretrained";
  auto bad = [&](const std::string& what) { return io_error(io::detail::file_message(who, file, what)); };
  if (!root.is_object())
    throw bad("expected a JSON object");
  auto size_field = [&](std::string_view key, std::size_t& out) {
    if (const auto* v = detail::config_member(root, key)) {
      if (!v->is_integer() || v->as_int() <= 0)
        throw bad(std::string(key) + " must be a positive integer, got " + json::dump(*v));
      out = static_cast<std::size_t>(v->as_int());
    }
  };
  auto number_field = [&](std::string_view key) -> std::optional<double> {
    if (const auto* v = detail::config_member(root, key)) {
      if (!v->is_number())
        throw bad(std::string(key) + " must be a number, got " + json::dump(*v));
      return v->as_double();
    }
    return std::nullopt;
  };
  auto bool_field = [&](std::string_view key, bool fallback) {
    if (const auto* v = detail::config_member(root, key)) {
      if (!v->is_bool())
        throw bad(std::string(key) + " must be true or false, got " + json::dump(*v));
      return v->as_bool();
    }
    return fallback;
  };
  auto token_field = [&](std::string_view key) -> std::optional<std::int64_t> {
    if (const auto* v = detail::config_member(root, key)) {
      if (!v->is_integer() || v->as_int() < 0)
        return std::nullopt; // lists of eos ids and the like: not ours to interpret
      return v->as_int();
    }
    return std::nullopt;
  };

  if (const auto* mt = detail::config_member(root, "model_type"))
    if (!mt->is_string() || mt->as_string() != "gpt2")
      throw bad("model_type is " + json::dump(*mt) + ", but only \"gpt2\" checkpoints can be loaded");
  gpt_config c; // GPT2Config's defaults are gpt_config's defaults
  size_field("vocab_size", c.vocab_size);
  size_field("n_positions", c.n_positions);
  size_field("n_embd", c.n_embd);
  size_field("n_layer", c.n_layer);
  size_field("n_head", c.n_head);
  if (auto eps = number_field("layer_norm_epsilon"))
    c.layer_norm_epsilon = *eps;
  if (const auto* act = detail::config_member(root, "activation_function")) {
    if (!act->is_string())
      throw bad("activation_function must be a string, got " + json::dump(*act));
    const std::string& a = act->as_string();
    if (a == "gelu_new" || a == "gelu_pytorch_tanh" || a == "gelu_fast")
      c.activation = "gelu_new"; // the same tanh approximation, computed three ways
    else if (a == "gelu")
      c.activation = "gelu";
    else
      throw bad("activation_function \"" + a + "\" is not supported (gelu_new, gelu_pytorch_tanh, gelu)");
  }
  c.tie_word_embeddings = bool_field("tie_word_embeddings", true);
  if (auto p = number_field("resid_pdrop"))
    c.dropout = *p; // grad has one dropout rate; GPT-2 uses 0.1 for all three
  if (const auto* inner = detail::config_member(root, "n_inner"))
    if (!inner->is_integer() || inner->as_int() != static_cast<std::int64_t>(4 * c.n_embd))
      throw bad("n_inner = " + json::dump(*inner) +
                " is not supported (only null or 4 * n_embd = " + std::to_string(4 * c.n_embd) + ")");
  if (bool_field("add_cross_attention", false))
    throw bad("add_cross_attention is not supported");
  if (bool_field("scale_attn_by_inverse_layer_idx", false))
    throw bad("scale_attn_by_inverse_layer_idx is not supported");
  if (!bool_field("scale_attn_weights", true))
    throw bad("scale_attn_weights = false is not supported");
  try {
    c.validate();
  } catch (const value_error& e) {
    throw bad(e.what());
  }
  if (info) {
    info->bos_token_id = token_field("bos_token_id");
    info->eos_token_id = token_field("eos_token_id");
  }
  return c;
}

/// Reads a config.json file into a gpt_config (see gpt_config_from_json).
inline gpt_config load_gpt_config(const std::filesystem::path& file, gpt_pretrained_info* info = nullptr) {
  io::detail::mapped_file f(file, "from_pretrained");
  const std::string_view text(reinterpret_cast<const char*>(f.bytes().data()), f.bytes().size());
  const std::string source = "from_pretrained: '" + file.string() + "'";
  return gpt_config_from_json(json::parse(text, source), file, info);
}

/// A transformers config.json object for `c` (model_type "gpt2", architectures GPT2LMHeadModel).
inline json::value gpt_config_to_json(const gpt_config& c, const gpt_save_options& opt = {},
                                      std::string_view torch_dtype = "float32") {
  const auto i = [](std::size_t v) { return json::value(static_cast<std::int64_t>(v)); };
  json::object o = {
      {"activation_function", json::value(c.activation)},
      {"architectures", json::value(json::array{json::value("GPT2LMHeadModel")})},
      {"attn_pdrop", json::value(c.dropout)},
      {"embd_pdrop", json::value(c.dropout)},
      {"initializer_range", json::value(0.02)},
      {"layer_norm_epsilon", json::value(c.layer_norm_epsilon)},
      {"model_type", json::value("gpt2")},
      {"n_ctx", i(c.n_positions)},
      {"n_embd", i(c.n_embd)},
      {"n_head", i(c.n_head)},
      {"n_inner", json::value()},
      {"n_layer", i(c.n_layer)},
      {"n_positions", i(c.n_positions)},
      {"resid_pdrop", json::value(c.dropout)},
      {"tie_word_embeddings", json::value(c.tie_word_embeddings)},
      {"torch_dtype", json::value(std::string(torch_dtype))},
      {"vocab_size", i(c.vocab_size)},
  };
  const std::optional<std::int64_t> gpt2_eos =
      c.vocab_size == 50257 ? std::optional<std::int64_t>(50256) : std::nullopt;
  if (auto b = opt.bos_token_id ? opt.bos_token_id : gpt2_eos)
    o.emplace_back("bos_token_id", json::value(*b));
  if (auto e = opt.eos_token_id ? opt.eos_token_id : gpt2_eos)
    o.emplace_back("eos_token_id", json::value(*e));
  return json::value(std::move(o));
}

namespace detail {

// "h.<digits>.attn.bias" / "h.<digits>.attn.masked_bias": the causal-mask buffers older transformers
// versions saved with every checkpoint. They hold no learned values.
inline bool is_attention_mask_buffer(std::string_view name) {
  if (!name.starts_with("h."))
    return false;
  name.remove_prefix(2);
  std::size_t d = 0;
  while (d < name.size() && name[d] >= '0' && name[d] <= '9')
    ++d;
  if (d == 0)
    return false;
  name.remove_prefix(d);
  return name == ".attn.bias" || name == ".attn.masked_bias";
}

inline std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i)
    s += (i ? ", " : "") + names[i];
  return s;
}

} // namespace detail

/// Loads the weights of a safetensors file in Hugging Face GPT-2 layout into `model`, in place. Keys
/// may carry the `transformer.` prefix (GPT2LMHeadModel) or not (GPT2Model); the `attn.bias` /
/// `attn.masked_bias` buffers are ignored; `lm_head.weight` is optional when the embeddings are tied
/// (and must then equal wte.weight). F16, BF16, F32 and F64 are converted to T. Everything is checked
/// first: on error nothing is written and ONE io_error names the file and every missing, unexpected,
/// duplicated, mis-typed and mis-shaped tensor.
template <class T>
void load_gpt_weights(basic_gpt<T>& model, const std::filesystem::path& file) {
  constexpr std::string_view who = "from_pretrained";
  io::detail::mapped_file f(file, who);
  const auto h = io::detail::parse_safetensors_header(f.bytes(), file, who);
  const std::byte* data = f.bytes().data() + h.data_offset;
  const bool tied = model.config().tie_word_embeddings;

  std::unordered_map<std::string, const io::tensor_info*> by_name; // model name -> file tensor
  std::vector<std::string> unexpected, duplicated, mistyped, misshaped, missing;
  const io::tensor_info* file_lm_head = nullptr;
  auto params = model.named_parameters();
  std::unordered_map<std::string, basic_tensor<T>> wanted(params.begin(), params.end());
  for (const auto& [stored, info] : h.tensors) {
    std::string name = stored;
    if (name.starts_with("transformer."))
      name.erase(0, 12);
    if (detail::is_attention_mask_buffer(name))
      continue;
    if (tied && name == "lm_head.weight") { // the tied head is wte itself: checked below
      file_lm_head = &info;
      continue;
    }
    if (!wanted.contains(name)) {
      unexpected.push_back(stored);
      continue;
    }
    if (!by_name.emplace(name, &info).second) {
      duplicated.push_back(name + " (with and without the transformer. prefix)");
      continue;
    }
    const auto& t = wanted.at(name);
    if (info.type != io::dtype::f32 && info.type != io::dtype::f16 && info.type != io::dtype::bf16 &&
        info.type != io::dtype::f64)
      mistyped.push_back(stored + " (" + std::string(io::dtype_name(info.type)) + ")");
    else if (info.shape != t.shape())
      misshaped.push_back(stored + " (file " + to_string(info.shape) + ", model " + to_string(t.shape()) +
                          ")");
  }
  for (const auto& [name, t] : params)
    if (!by_name.contains(name))
      missing.push_back(name);
  if (file_lm_head && by_name.contains("wte.weight")) {
    const auto* w = by_name.at("wte.weight");
    if (file_lm_head->shape != w->shape)
      misshaped.push_back("lm_head.weight (file " + to_string(file_lm_head->shape) + ", tied to wte.weight " +
                          to_string(w->shape) + ")");
  }
  if (!missing.empty() || !unexpected.empty() || !duplicated.empty() || !mistyped.empty() ||
      !misshaped.empty()) {
    std::string m = "does not match the GPT-2 model of config.json (n_layer " +
                    std::to_string(model.config().n_layer) + ", n_embd " +
                    std::to_string(model.config().n_embd) + ", vocab_size " +
                    std::to_string(model.config().vocab_size) + "):";
    auto list = [&](const std::vector<std::string>& names, const char* what) {
      if (!names.empty())
        m += " " + std::to_string(names.size()) + " " + what + ": " + detail::join_names(names) + ";";
    };
    list(missing, "missing");
    list(unexpected, "unexpected");
    list(duplicated, "duplicated");
    list(mistyped, "not floating point");
    list(misshaped, "mis-shaped");
    m += " nothing was loaded";
    throw io_error(io::detail::file_message(who, file, m));
  }
  for (auto& [name, t] : params) {
    const auto* info = by_name.at(name);
    io::detail::convert_le<T>(data + info->begin, info->type, t.data(), t.numel());
  }
  if (file_lm_head) { // a tied head stored anyway must be the embedding, or config.json is wrong
    std::vector<T> head(model.wte.numel());
    io::detail::convert_le<T>(data + file_lm_head->begin, file_lm_head->type, head.data(), head.size());
    if (!std::equal(head.begin(), head.end(), model.wte.data()))
      throw io_error(io::detail::file_message(
          who, file,
          "lm_head.weight differs from wte.weight, but config.json has tie_word_embeddings = true; set it "
          "to false to load a separate LM head"));
  }
}

/// Loads a Hugging Face GPT-2 directory (`config.json` + `model.safetensors`, memory-mapped) into a new
/// model in evaluation mode. Throws io_error naming the file for anything missing, malformed or
/// mismatched (see load_gpt_weights); `info`, when given, receives the special token ids.
template <class T = float>
basic_gpt<T> from_pretrained_gpt(const std::filesystem::path& dir, gpt_pretrained_info* info = nullptr) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw io_error("from_pretrained: '" + dir.string() +
                   "' is not a directory (expected a Hugging Face model directory with config.json and "
                   "model.safetensors)");
  const auto weights = dir / "model.safetensors";
  if (!std::filesystem::exists(weights, ec)) {
    std::string hint;
    if (std::filesystem::exists(dir / "model.safetensors.index.json", ec))
      hint = "; sharded checkpoints (model.safetensors.index.json) are not supported";
    else if (std::filesystem::exists(dir / "pytorch_model.bin", ec))
      hint = "; only pytorch_model.bin is there: convert it with transformers (model.save_pretrained(dir, "
             "safe_serialization=True))";
    throw io_error("from_pretrained: '" + weights.string() + "' does not exist" + hint);
  }
  const gpt_config cfg = load_gpt_config(dir / "config.json", info);
  generator gen(0); // seeds the dropout masks, should the loaded model be trained
  basic_gpt<T> model = [&] {
    nn::init::no_init_weights skip; // every weight is read from the file: do not draw them first
    return basic_gpt<T>(cfg, gen);
  }();
  load_gpt_weights(model, weights);
  model.eval();
  return model;
}

/// Writes `model` as a Hugging Face GPT-2 directory: config.json (model_type "gpt2", architectures
/// ["GPT2LMHeadModel"]) and model.safetensors (keys `transformer.wte.weight`, ..., plus `lm_head.weight`
/// when untied; `__metadata__` {"format": "pt"}, which transformers requires), each written atomically.
/// Creates `dir` if needed; throws io_error naming the file on failure.
template <class T>
void save_pretrained(const basic_gpt<T>& model, const std::filesystem::path& dir,
                     const gpt_save_options& opt = {}) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    throw io_error("save_pretrained: cannot create the directory '" + dir.string() + "': " + ec.message());
  const auto params = model.named_parameters();
  std::vector<io::raw_tensor> raw;
  raw.reserve(params.size());
  for (const auto& [name, t] : params) {
    static_assert(std::endian::native == std::endian::little, "save_pretrained writes host bytes");
    const std::string key = name == "lm_head.weight" ? name : "transformer." + name;
    raw.push_back(
        {key, io::dtype_of<T>(), t.shape(),
         std::span<const std::byte>(reinterpret_cast<const std::byte*>(t.data()), t.numel() * sizeof(T))});
  }
  io::write_safetensors(dir / "model.safetensors", raw, {{"format", "pt"}});
  const std::string text =
      json::dump(gpt_config_to_json(model.config(), opt, std::is_same_v<T, float> ? "float32" : "float64")) +
      "\n";
  const auto config = dir / "config.json";
  io::detail::atomic_write(config, "save_pretrained", [&](io::detail::file_writer& w) { w.write(text); });
}

template <class T>
basic_gpt<T> basic_gpt<T>::from_pretrained(const std::filesystem::path& dir) {
  return from_pretrained_gpt<T>(dir);
}

template <class T>
void basic_gpt<T>::save_pretrained(const std::filesystem::path& dir) const {
  models::save_pretrained(*this, dir);
}

} // namespace grad::models
