// Tests of models/gpt_pretrained.hpp: Hugging Face GPT-2 directories written byte by byte here, in the
// exact layout transformers uses (both key prefixes, the attention-mask buffers, F32/F16/BF16/F64),
// loaded and checked value by value and against a naive GPT-2 forward written from the paper and
// transformers' modeling_gpt2.py; save_pretrained round trips; every error names what is wrong.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numbers>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include <grad/core/tape.hpp>
#include <grad/generate/generate.hpp>
#include <grad/io/safetensors.hpp>
#include <grad/models/gpt_pretrained.hpp>

namespace {

namespace fs = std::filesystem;
using grad::shape_type;
using grad::models::gpt_config;

struct entry {
  std::string name; // without prefix
  shape_type shape;
  std::vector<double> values;
};

// A random GPT-2 checkpoint for `c`, names and shapes listed from transformers' GPT2LMHeadModel (not
// from grad's model), values k/256 (LayerNorm weights 1 + k/128) with |k| <= 12: exact in F16, BF16
// (7 fraction bits), F32 and F64.
std::vector<entry> random_checkpoint(const gpt_config& c, std::uint64_t seed) {
  grad::generator gen(seed);
  const std::size_t C = c.n_embd, V = c.vocab_size, P = c.n_positions;
  std::vector<entry> out;
  auto add = [&](std::string name, shape_type shape, double base = 0.0) {
    std::size_t n = 1;
    for (auto d : shape)
      n *= d;
    std::vector<double> v(n);
    for (auto& x : v)
      x = base + (static_cast<double>(gen.randint(25)) - 12.0) / (base == 0 ? 256.0 : 128.0);
    out.push_back({std::move(name), std::move(shape), std::move(v)});
  };
  add("wte.weight", {V, C});
  add("wpe.weight", {P, C});
  for (std::size_t i = 0; i < c.n_layer; ++i) {
    const std::string h = "h." + std::to_string(i) + ".";
    add(h + "ln_1.weight", {C}, 1.0);
    add(h + "ln_1.bias", {C});
    add(h + "attn.c_attn.weight", {C, 3 * C});
    add(h + "attn.c_attn.bias", {3 * C});
    add(h + "attn.c_proj.weight", {C, C});
    add(h + "attn.c_proj.bias", {C});
    add(h + "ln_2.weight", {C}, 1.0);
    add(h + "ln_2.bias", {C});
    add(h + "mlp.c_fc.weight", {C, 4 * C});
    add(h + "mlp.c_fc.bias", {4 * C});
    add(h + "mlp.c_proj.weight", {4 * C, C});
    add(h + "mlp.c_proj.bias", {C});
  }
  add("ln_f.weight", {C}, 1.0);
  add("ln_f.bias", {C});
  if (!c.tie_word_embeddings)
    add("lm_head.weight", {V, C});
  return out;
}

const entry& find(const std::vector<entry>& es, const std::string& name) {
  for (const auto& e : es)
    if (e.name == name)
      return e;
  throw std::runtime_error("no " + name);
}

// Exact encodings for values that are representable (all of ours are).
std::uint16_t to_bf16(float f) {
  return static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(f) >> 16);
}
std::uint16_t to_f16(float f) {
  const std::uint32_t b = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = (b >> 16) & 0x8000u;
  if ((b & 0x7fffffffu) == 0)
    return static_cast<std::uint16_t>(sign);
  const int exp = static_cast<int>((b >> 23) & 0xff) - 127 + 15;
  REQUIRE((exp > 0 && exp < 31)); // normal in half precision
  REQUIRE((b & 0x1fffu) == 0);    // no bits lost
  return static_cast<std::uint16_t>(sign | (static_cast<std::uint32_t>(exp) << 10) | ((b >> 13) & 0x3ffu));
}

struct write_options {
  std::string dtype = "F32";
  bool prefix = true;                                // "transformer." before every key but lm_head.weight
  bool buffers = true;                               // h.i.attn.bias (1, 1, P, P) and h.i.attn.masked_bias ()
  bool tied_lm_head = false;                         // also store lm_head.weight = wte.weight
  std::set<std::string> drop{};                      // leave these out
  std::map<std::string, shape_type> header_shape{};  // lie about these shapes (data sized to match)
  std::map<std::string, std::string> header_dtype{}; // store these with another dtype
  std::vector<std::string> extra{};                  // unknown tensors (F32, shape (2))
  std::size_t truncate = 0;                          // cut this many bytes off the end
};

// A safetensors file written byte by byte: u64 header size, JSON header, data.
void write_checkpoint(const fs::path& file, const std::vector<entry>& es, const gpt_config& c,
                      const write_options& o = {}) {
  struct item {
    std::string key, dtype;
    shape_type shape;
    std::vector<unsigned char> bytes;
  };
  std::vector<item> items;
  auto encode = [](const std::string& dtype, const std::vector<double>& v) {
    std::vector<unsigned char> b;
    auto put = [&](auto x) {
      unsigned char tmp[sizeof x];
      std::memcpy(tmp, &x, sizeof x); // the test host is little-endian, as safetensors
      b.insert(b.end(), tmp, tmp + sizeof x);
    };
    for (double x : v) {
      if (dtype == "F32")
        put(static_cast<float>(x));
      else if (dtype == "F64")
        put(x);
      else if (dtype == "F16")
        put(to_f16(static_cast<float>(x)));
      else if (dtype == "BF16")
        put(to_bf16(static_cast<float>(x)));
      else if (dtype == "I64")
        put(static_cast<std::int64_t>(x));
    }
    return b;
  };
  auto key = [&](const std::string& n) {
    return (o.prefix && n != "lm_head.weight" ? "transformer." : "") + n;
  };
  for (std::size_t l = 0; l < c.n_layer && o.buffers; ++l) {
    const std::size_t P = c.n_positions;
    std::vector<double> mask(P * P);
    for (std::size_t i = 0; i < P; ++i)
      for (std::size_t j = 0; j <= i; ++j)
        mask[i * P + j] = 1;
    items.push_back({key("h." + std::to_string(l) + ".attn.bias"), "F32", {1, 1, P, P}, encode("F32", mask)});
    items.push_back({key("h." + std::to_string(l) + ".attn.masked_bias"), "F32", {}, encode("F32", {-1e4})});
  }
  for (const auto& e : es) {
    if (o.drop.contains(e.name))
      continue;
    std::string dt = o.header_dtype.contains(e.name) ? o.header_dtype.at(e.name) : o.dtype;
    shape_type shape = o.header_shape.contains(e.name) ? o.header_shape.at(e.name) : e.shape;
    std::size_t n = 1;
    for (auto d : shape)
      n *= d;
    std::vector<double> v = e.values;
    v.resize(n, 0.0);
    items.push_back({key(e.name), dt, shape, encode(dt, v)});
  }
  if (o.tied_lm_head)
    items.push_back({"lm_head.weight", o.dtype, find(es, "wte.weight").shape,
                     encode(o.dtype, find(es, "wte.weight").values)});
  for (const auto& x : o.extra)
    items.push_back({x, "F32", {2}, encode("F32", {1, 2})});
  // Header in reverse order of the data, as nothing promises they agree.
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  std::size_t offset = 0;
  std::vector<std::string> parts;
  for (const auto& it : items) {
    std::string s = "\"" + it.key + "\":{\"dtype\":\"" + it.dtype + "\",\"shape\":[";
    for (std::size_t i = 0; i < it.shape.size(); ++i)
      s += (i ? "," : "") + std::to_string(it.shape[i]);
    s += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + it.bytes.size()) +
         "]}";
    offset += it.bytes.size();
    parts.push_back(s);
  }
  for (auto p = parts.rbegin(); p != parts.rend(); ++p)
    header += "," + *p;
  header += "}";
  std::string file_bytes(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(file_bytes.data(), &n, 8);
  file_bytes += header;
  for (const auto& it : items)
    file_bytes.append(reinterpret_cast<const char*>(it.bytes.data()), it.bytes.size());
  file_bytes.resize(file_bytes.size() - o.truncate);
  std::ofstream(file, std::ios::binary)
      .write(file_bytes.data(), static_cast<std::streamsize>(file_bytes.size()));
}

std::string config_json(const gpt_config& c, const std::string& extra = "") {
  std::string s =
      "{\n  \"activation_function\": \"" + c.activation +
      "\",\n  \"architectures\": [\"GPT2LMHeadModel\"],\n" +
      "  \"attn_pdrop\": 0.1,\n  \"bos_token_id\": 50256,\n  \"embd_pdrop\": 0.1,\n  \"eos_token_id\": "
      "50256,\n" +
      "  \"initializer_range\": 0.02,\n  \"layer_norm_epsilon\": 1e-05,\n  \"model_type\": \"gpt2\",\n" +
      "  \"n_ctx\": " + std::to_string(c.n_positions) + ",\n  \"n_embd\": " + std::to_string(c.n_embd) +
      ",\n  \"n_head\": " + std::to_string(c.n_head) +
      ",\n  \"n_inner\": null,\n  \"n_layer\": " + std::to_string(c.n_layer) +
      ",\n  \"n_positions\": " + std::to_string(c.n_positions) +
      ",\n  \"reorder_and_upcast_attn\": false,\n  \"resid_pdrop\": 0.1,\n" +
      "  \"scale_attn_by_inverse_layer_idx\": false,\n  \"scale_attn_weights\": true,\n" +
      "  \"summary_activation\": null,\n  \"summary_first_dropout\": 0.1,\n  \"summary_proj_to_labels\": "
      "true,\n" +
      "  \"summary_type\": \"cls_index\",\n  \"summary_use_proj\": true,\n" +
      "  \"task_specific_params\": {\"text-generation\": {\"do_sample\": true, \"max_length\": 50}},\n" +
      "  \"tie_word_embeddings\": " + (c.tie_word_embeddings ? "true" : "false") +
      ",\n  \"vocab_size\": " + std::to_string(c.vocab_size) + extra + "\n}\n";
  return s;
}

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary) << s;
}

struct temp_dir {
  fs::path path;
  explicit temp_dir(const std::string& name)
      : path(fs::temp_directory_path() /
             ("grad_test_gpt_pretrained_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

gpt_config tiny(bool tied = true, std::string act = "gelu_new") {
  gpt_config c;
  c.vocab_size = 13;
  c.n_positions = 12;
  c.n_embd = 8;
  c.n_layer = 2;
  c.n_head = 2;
  c.activation = std::move(act);
  c.tie_word_embeddings = tied;
  return c;
}

// GPT-2 forward written out naively in double from transformers' modeling_gpt2.py: Conv1D is x W + b
// with W stored (in, out); q, k, v are the three C-wide column blocks of c_attn; head h of each is
// columns [h HS, (h + 1) HS).
std::vector<std::vector<double>> reference_logits(const std::vector<entry>& es, const gpt_config& c,
                                                  const std::vector<std::int64_t>& ids) {
  const std::size_t C = c.n_embd, T = ids.size(), NH = c.n_head, HS = C / NH, V = c.vocab_size;
  auto W = [&](const std::string& n) -> const std::vector<double>& { return find(es, n).values; };
  using mat = std::vector<std::vector<double>>;
  mat x(T, std::vector<double>(C));
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t j = 0; j < C; ++j)
      x[t][j] = W("wte.weight")[static_cast<std::size_t>(ids[t]) * C + j] + W("wpe.weight")[t * C + j];
  auto layer_norm = [&](const mat& in, const std::string& n) {
    mat out = in;
    for (std::size_t t = 0; t < T; ++t) {
      double mean = 0, var = 0;
      for (double v : in[t])
        mean += v / static_cast<double>(C);
      for (double v : in[t])
        var += (v - mean) * (v - mean) / static_cast<double>(C);
      for (std::size_t j = 0; j < C; ++j)
        out[t][j] = (in[t][j] - mean) / std::sqrt(var + 1e-5) * W(n + ".weight")[j] + W(n + ".bias")[j];
    }
    return out;
  };
  auto conv1d = [&](const mat& in, const std::string& n, std::size_t nin, std::size_t nout) {
    mat out(T, std::vector<double>(nout));
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t o = 0; o < nout; ++o) {
        double s = W(n + ".bias")[o];
        for (std::size_t i = 0; i < nin; ++i)
          s += in[t][i] * W(n + ".weight")[i * nout + o];
        out[t][o] = s;
      }
    return out;
  };
  for (std::size_t l = 0; l < c.n_layer; ++l) {
    const std::string h = "h." + std::to_string(l) + ".";
    const mat qkv = conv1d(layer_norm(x, h + "ln_1"), h + "attn.c_attn", C, 3 * C);
    mat y(T, std::vector<double>(C, 0.0));
    for (std::size_t hd = 0; hd < NH; ++hd)
      for (std::size_t t = 0; t < T; ++t) {
        std::vector<double> w(t + 1);
        double top = -1e300, z = 0;
        for (std::size_t s = 0; s <= t; ++s) {
          double dot = 0;
          for (std::size_t d = 0; d < HS; ++d)
            dot += qkv[t][hd * HS + d] * qkv[s][C + hd * HS + d];
          w[s] = dot / std::sqrt(static_cast<double>(HS));
          top = std::max(top, w[s]);
        }
        for (auto& v : w)
          z += v = std::exp(v - top);
        for (std::size_t s = 0; s <= t; ++s)
          for (std::size_t d = 0; d < HS; ++d)
            y[t][hd * HS + d] += w[s] / z * qkv[s][2 * C + hd * HS + d];
      }
    const mat proj = conv1d(y, h + "attn.c_proj", C, C);
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t j = 0; j < C; ++j)
        x[t][j] += proj[t][j];
    mat f = conv1d(layer_norm(x, h + "ln_2"), h + "mlp.c_fc", C, 4 * C);
    for (auto& r : f)
      for (auto& v : r)
        v = c.activation == "gelu"
                ? 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)))
                : 0.5 * v * (1 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (v + 0.044715 * v * v * v)));
    const mat m = conv1d(f, h + "mlp.c_proj", 4 * C, C);
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t j = 0; j < C; ++j)
        x[t][j] += m[t][j];
  }
  x = layer_norm(x, "ln_f");
  const auto& head = c.tie_word_embeddings ? W("wte.weight") : W("lm_head.weight");
  mat logits(T, std::vector<double>(V));
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t v = 0; v < V; ++v)
      for (std::size_t j = 0; j < C; ++j)
        logits[t][v] += x[t][j] * head[v * C + j];
  return logits;
}

template <class T>
void check_parameters(const grad::models::basic_gpt<T>& m, const std::vector<entry>& es) {
  const auto params = m.named_parameters();
  std::set<std::string> names;
  for (const auto& [param_name, t] : params) {
    const std::string& name = param_name; // structured bindings cannot be captured (clang 14)
    CAPTURE(name);
    names.insert(name);
    const auto& e = find(es, name);
    REQUIRE(t.shape() == e.shape);
    for (std::size_t i = 0; i < e.values.size(); ++i)
      if (t.data()[i] != static_cast<T>(e.values[i])) {
        CHECK(t.data()[i] == static_cast<T>(e.values[i]));
        break;
      }
  }
  CHECK(names.size() == es.size());
}

template <class T>
void check_logits(const grad::models::basic_gpt<T>& m, const std::vector<entry>& es, const gpt_config& c) {
  const std::vector<std::int64_t> ids = {3, 0, 12, 7, 7, 1};
  const auto want = reference_logits(es, c, ids);
  grad::no_grad guard;
  const auto got = m.forward(grad::index_tensor(ids, {1, ids.size()})); // (1, T, V)
  REQUIRE(got.shape() == shape_type{1, ids.size(), c.vocab_size});
  double worst = 0;
  for (std::size_t t = 0; t < ids.size(); ++t)
    for (std::size_t v = 0; v < c.vocab_size; ++v)
      worst = std::max(worst, std::abs(static_cast<double>(got.data()[t * c.vocab_size + v]) - want[t][v]));
  CHECK(worst < (std::is_same_v<T, float> ? 1e-4 : 1e-10));
  // The KV-cache path gives the last position's logits too.
  auto cache = m.make_cache(1, c.n_positions);
  std::vector<T> out(c.vocab_size);
  m.next_logits(cache, ids, ids.size(), out.data());
  for (std::size_t v = 0; v < c.vocab_size; ++v)
    CHECK(static_cast<double>(out[v]) == doctest::Approx(want.back()[v]).epsilon(1e-4));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const grad::io_error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("WRONG EXCEPTION TYPE: ") + e.what();
  }
  return "NO ERROR";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("from_pretrained_gpt loads a transformers GPT-2 directory: both prefixes, buffers, every dtype") {
  for (const bool tied : {true, false})
    for (const std::string act : {"gelu_new", "gelu"})
      for (const std::string dtype : {"F32", "F16", "BF16", "F64"})
        for (const bool prefix : {true, false}) {
          CAPTURE(tied);
          CAPTURE(act);
          CAPTURE(dtype);
          CAPTURE(prefix);
          const auto c = tiny(tied, act);
          const auto es = random_checkpoint(c, 42);
          temp_dir d("load");
          write_text(d.path / "config.json", config_json(c));
          write_checkpoint(d.path / "model.safetensors", es, c,
                           {.dtype = dtype, .prefix = prefix, .buffers = prefix});
          grad::models::gpt_pretrained_info info;
          const auto m = grad::models::from_pretrained_gpt(d.path, &info);
          CHECK(!m.is_training());
          CHECK(m.config().n_layer == 2);
          CHECK(m.config().activation == act);
          CHECK(m.config().tie_word_embeddings == tied);
          CHECK(info.eos_token_id == 50256);
          check_parameters(m, es);
          check_logits(m, es, c);
        }
}

TEST_CASE("from_pretrained_gpt in double, and a tied lm_head stored anyway") {
  const auto c = tiny();
  const auto es = random_checkpoint(c, 7);
  temp_dir d("double");
  write_text(d.path / "config.json", config_json(c));
  write_checkpoint(d.path / "model.safetensors", es, c, {.dtype = "F64", .tied_lm_head = true});
  const auto m = grad::models::from_pretrained_gpt<double>(d.path);
  check_parameters(m, es);
  check_logits(m, es, c);

  // A stored head that is not the embedding means config.json is wrong: an untied checkpoint (with
  // its own lm_head.weight) under the tied config.
  const auto untied = tiny(false);
  write_checkpoint(d.path / "model.safetensors", random_checkpoint(untied, 8), untied);
  const auto e = error_of([&] { (void)grad::models::from_pretrained_gpt(d.path); });
  CHECK(contains(e, "tie_word_embeddings"));
  CHECK(contains(e, "model.safetensors"));
}

TEST_CASE("save_pretrained writes what transformers expects and loads back identically") {
  const auto c = tiny(false);
  const auto es = random_checkpoint(c, 3);
  temp_dir d("save");
  write_text(d.path / "config.json", config_json(c));
  write_checkpoint(d.path / "model.safetensors", es, c, {.dtype = "BF16"});
  const auto m = grad::models::from_pretrained_gpt(d.path);
  const auto out = d.path / "saved";
  grad::models::save_pretrained(m, out);
  const auto back = grad::models::from_pretrained_gpt(out);
  check_parameters(back, es);
  CHECK(back.config().n_positions == c.n_positions);
  CHECK(back.config().tie_word_embeddings == false);

  const auto h = grad::io::inspect_safetensors(out / "model.safetensors");
  CHECK(h.metadata == grad::io::metadata_map{{"format", "pt"}});
  std::set<std::string> keys;
  for (const auto& [k, info] : h.tensors) {
    keys.insert(k);
    CHECK(info.type == grad::io::dtype::f32);
  }
  CHECK(keys.contains("transformer.wte.weight"));
  CHECK(keys.contains("transformer.h.1.mlp.c_proj.bias"));
  CHECK(keys.contains("lm_head.weight")); // untied: stored, without prefix
  CHECK(keys.size() == es.size());

  std::ifstream f(out / "config.json");
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto j = grad::json::parse(text);
  CHECK(j.at("model_type").as_string() == "gpt2");
  CHECK(j.at("architectures").at(std::size_t{0}).as_string() == "GPT2LMHeadModel");
  CHECK(j.at("n_ctx").as_int() == 12);
  CHECK(j.at("n_embd").as_int() == 8);
  CHECK(j.at("activation_function").as_string() == "gelu_new");
  CHECK(j.at("tie_word_embeddings").as_bool() == false);
  CHECK(j.find("eos_token_id") == nullptr); // not GPT-2's vocabulary: no special tokens claimed

  // A tied model stores no lm_head; GPT-2's vocabulary size brings GPT-2's eos/bos.
  grad::generator gen(1);
  auto big = tiny();
  big.vocab_size = 50257;
  const grad::models::gpt g(big, gen);
  grad::models::save_pretrained(g, d.path / "tied");
  const auto ht = grad::io::inspect_safetensors(d.path / "tied" / "model.safetensors");
  CHECK(ht.find("lm_head.weight") == nullptr);
  grad::models::gpt_pretrained_info info;
  const auto g2 = grad::models::from_pretrained_gpt(d.path / "tied", &info);
  CHECK(info.eos_token_id == 50256);
  CHECK(info.bos_token_id == 50256);
  CHECK(std::equal(g.wte.data(), g.wte.data() + g.wte.numel(), g2.wte.data()));

  // The member spellings, as in transformers: gpt::from_pretrained(dir) and model.save_pretrained(dir).
  g.save_pretrained(d.path / "member");
  const auto g3 = grad::models::gpt::from_pretrained(d.path / "member");
  CHECK(std::equal(g.wpe.data(), g.wpe.data() + g.wpe.numel(), g3.wpe.data()));
  CHECK(g3.config().vocab_size == 50257);
}

TEST_CASE("loading errors name the file and every problem at once") {
  const auto c = tiny();
  const auto es = random_checkpoint(c, 5);
  temp_dir d("errors");
  const auto st = d.path / "model.safetensors";
  write_text(d.path / "config.json", config_json(c));
  auto load = [&] { (void)grad::models::from_pretrained_gpt(d.path); };

  write_checkpoint(st, es, c,
                   {.drop = {"h.1.mlp.c_fc.bias", "ln_f.weight"},
                    .header_shape = {{"h.0.attn.c_attn.weight", {8, 16}}},
                    .extra = {"transformer.h.0.attn.rotary"}});
  auto e = error_of(load);
  CHECK(contains(e, st.string()));
  CHECK(contains(e, "2 missing: h.1.mlp.c_fc.bias, ln_f.weight"));
  CHECK(contains(e, "h.0.attn.c_attn.weight (file (8, 16), model (8, 24))"));
  CHECK(contains(e, "unexpected: transformer.h.0.attn.rotary"));
  CHECK(contains(e, "nothing was loaded"));

  write_checkpoint(st, es, c, {.header_dtype = {{"wpe.weight", "I64"}}});
  CHECK(contains(error_of(load), "wpe.weight (I64)"));

  // The same tensor with and without the prefix.
  write_checkpoint(st, es, c, {.prefix = true, .extra = {"wte.weight"}});
  CHECK(contains(error_of(load), "duplicated"));

  write_checkpoint(st, es, c, {.truncate = 3});
  e = error_of(load);
  CHECK(contains(e, st.string()));
  CHECK(contains(e, "truncated"));

  write_text(st, "not a safetensors file");
  CHECK(contains(error_of(load), st.string()));

  fs::remove(st);
  CHECK(contains(error_of(load), "model.safetensors' does not exist"));
  write_text(d.path / "pytorch_model.bin", "x");
  CHECK(contains(error_of(load), "pytorch_model.bin"));
  CHECK(contains(error_of([&] { (void)grad::models::from_pretrained_gpt(d.path / "nope"); }),
                 "not a directory"));
}

TEST_CASE("config.json errors name the file and the field") {
  const auto c = tiny();
  const auto es = random_checkpoint(c, 5);
  temp_dir d("config");
  write_checkpoint(d.path / "model.safetensors", es, c);
  const auto cfg = d.path / "config.json";
  auto load = [&] { (void)grad::models::from_pretrained_gpt(d.path); };
  auto with = [&](const std::string& text) {
    write_text(cfg, text);
    return error_of(load);
  };
  auto e = with("{\"n_embd\": 8, \"n_head\": 3, \"n_layer\": 2, \"vocab_size\": 13, \"n_positions\": 12}");
  CHECK(contains(e, cfg.string()));
  CHECK(contains(e, "not divisible"));
  CHECK(contains(with("{\"n_embd\": 8, \"n_layer\": \"two\"}"), "n_layer must be a positive integer"));
  CHECK(contains(with("{\"n_embd\": 8, \"model_type\": \"bert\"}"), "only \"gpt2\""));
  CHECK(contains(with("{\"activation_function\": \"relu\"}"), "relu"));
  CHECK(contains(with("{\"n_embd\": 8, \"n_inner\": 64}"), "n_inner"));
  e = with("{\"n_embd\": 8,");
  CHECK(contains(e, cfg.string()));
  CHECK(contains(e, "invalid JSON"));
  CHECK(contains(with("[1, 2]"), "expected a JSON object"));
  fs::remove(cfg);
  CHECK(contains(error_of(load), "config.json"));
  // A config that disagrees with the weights: the mismatch is a weights error listing the shapes.
  auto wide = c;
  wide.n_embd = 16;
  write_text(cfg, config_json(wide));
  CHECK(contains(error_of(load), "mis-shaped"));
  // Absent fields take GPT2Config's defaults; null n_inner is fine.
  write_text(cfg, "{\"n_embd\": 8, \"n_head\": 2, \"n_layer\": 2, \"vocab_size\": 13, \"n_positions\": 12, "
                  "\"n_inner\": null}");
  CHECK_NOTHROW(load());
}

TEST_CASE("generate on a loaded GPT-2 matches decoding with full forwards") {
  const auto c = tiny();
  const auto es = random_checkpoint(c, 11);
  temp_dir d("generate");
  write_text(d.path / "config.json", config_json(c));
  write_checkpoint(d.path / "model.safetensors", es, c);
  const auto m = grad::models::from_pretrained_gpt<double>(d.path);
  static_assert(grad::causal_lm<grad::models::basic_gpt<double>>);
  static_assert(grad::causal_lm<grad::models::gpt>);

  // A cache-free twin: every step runs forward() on the whole history.
  struct full_forward_lm {
    using value_type = double;
    struct cache_type {
      std::vector<std::vector<std::int64_t>> rows;
      std::size_t length() const { return rows.empty() ? 0 : rows[0].size(); }
      void reorder(std::span<const std::size_t> src) {
        std::vector<std::vector<std::int64_t>> next;
        for (auto r : src)
          next.push_back(rows[r]);
        rows = std::move(next);
      }
    };
    const grad::models::basic_gpt<double>* m;
    const gpt_config& config() const { return m->config(); }
    cache_type make_cache(std::size_t b, std::size_t) const {
      return {std::vector<std::vector<std::int64_t>>(b)};
    }
    void next_logits(cache_type& c, std::span<const std::int64_t> ids, std::size_t n, double* out) const {
      grad::no_grad guard;
      for (std::size_t r = 0; r < c.rows.size(); ++r) {
        c.rows[r].insert(c.rows[r].end(), ids.begin() + static_cast<std::ptrdiff_t>(r * n),
                         ids.begin() + static_cast<std::ptrdiff_t>((r + 1) * n));
        const auto l = m->forward(grad::index_tensor(c.rows[r], {1, c.rows[r].size()}));
        const std::size_t V = m->config().vocab_size, T = c.rows[r].size();
        std::copy_n(l.data() + (T - 1) * V, V, out + r * V);
      }
    }
  } twin{&m};
  static_assert(grad::causal_lm<full_forward_lm>);

  const grad::index_tensor prompt{{1, 2, 3}, {4, 4, 0}};
  for (const grad::generation_config& g :
       {grad::generation_config{.max_new_tokens = 9},
        grad::generation_config{.max_new_tokens = 9, .num_beams = 3, .num_return_sequences = 2},
        grad::generation_config{
            .max_new_tokens = 9, .num_beams = 4, .no_repeat_ngram_size = 2, .eos_token_id = 5},
        grad::generation_config{.max_new_tokens = 9,
        .do_sample = true,
        .temperature = 0.8,
        .top_k = 6,
        .top_p = 0.9,
        .repetition_penalty = 1.3,
        .seed = 3,
        .num_return_sequences = 2}}) {
    const auto a = grad::generate(m, prompt, g);
    const auto b = grad::generate(twin, prompt, g);
    CHECK(a == b);
  }
}
