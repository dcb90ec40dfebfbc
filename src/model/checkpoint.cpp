#include "vigil/model/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <nlohmann/json.hpp>

#include <map>
#include <sstream>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/hash.h"

namespace vigil::model {
namespace {

using nlohmann::json;
using torch::serialize::InputArchive;
using torch::serialize::OutputArchive;

constexpr std::string_view kMagic = "VGLCKPT1";
constexpr size_t kTrailerSize = 8 + 64;  // magic + SHA-256 hex
constexpr int kFormatVersion = 1;
constexpr const char* kFormatName = "vigil.checkpoint";
const std::string kMetaKey = "vigil_meta";
const std::string kGeneratorKey = "rng/torch_cpu";
const std::string kOptimizerKey = "optimizer";

struct NamedTensor {
  std::string name;
  torch::Tensor tensor;
  bool is_buffer;
};

// Parameters then buffers, in registration order; undefined slots (bias=false) are not state.
std::vector<NamedTensor> model_tensors(const torch::nn::Module& model) {
  std::vector<NamedTensor> out;
  for (const auto& p : model.named_parameters(true)) {
    if (p.value().defined()) out.push_back({p.key(), p.value(), false});
  }
  for (const auto& b : model.named_buffers(true)) {
    if (b.value().defined()) out.push_back({b.key(), b.value(), true});
  }
  return out;
}

// Tensors are stored under "model/<index>" with their names in the meta: parameter names contain dots, which
// TorchScript attribute names should not.
std::string tensor_key(size_t index) {
  return "model/" + std::to_string(index);
}

std::string extra_tensor_key(size_t index) {
  return "extra/" + std::to_string(index);
}

std::string dtype_name(const torch::Tensor& t) {
  return std::string(c10::toString(t.scalar_type()));
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::string first_line(const c10::Error& e) {
  std::string msg = e.what_without_backtrace();
  return msg.substr(0, msg.find('\n'));
}

json meta_to_json(const Checkpoint& meta, const std::vector<NamedTensor>& tensors, const std::string& kind) {
  json model = json::array();
  for (const auto& t : tensors) {
    model.push_back({{"name", t.name},
                     {"shape", t.tensor.sizes().vec()},
                     {"dtype", dtype_name(t.tensor)},
                     {"buffer", t.is_buffer}});
  }
  return {{"format", kFormatName},
          {"version", kFormatVersion},
          {"epoch", meta.epoch},
          {"iteration", meta.iteration},
          {"arch", meta.arch},
          {"class_names", meta.class_names},
          {"config_yaml", meta.config_yaml},
          {"extra_json", meta.extra_json},
          {"model_json", meta.model_json},
          {"rng_state", meta.rng_state},
          {"optimizer", kind},
          {"model", model},
          {"extra_tensors", meta.extra_tensors.size()}};
}

Checkpoint meta_from_json(const json& j) {
  Checkpoint meta;
  meta.epoch = j.at("epoch").get<int>();
  meta.iteration = j.at("iteration").get<int64_t>();
  meta.arch = j.at("arch").get<std::string>();
  meta.class_names = j.at("class_names").get<std::vector<std::string>>();
  meta.config_yaml = j.at("config_yaml").get<std::string>();
  meta.extra_json = j.at("extra_json").get<std::string>();
  meta.model_json = j.value("model_json", std::string());
  meta.rng_state = j.at("rng_state").get<std::string>();
  meta.optimizer = j.at("optimizer").get<std::string>();
  return meta;
}

// Reads the file, checks the trailer's hash and opens the archive. Every failure names the file.
void open_archive(const std::filesystem::path& file, InputArchive& archive) {
  const std::string bytes = read_file(file);
  const std::string name = to_utf8(file);
  if (bytes.size() < kTrailerSize ||
      std::string_view(bytes).substr(bytes.size() - kTrailerSize, 8) != kMagic) {
    throw DataError(
        fmt::format("{}: expected a vigil checkpoint ending in a '{}' trailer, got {} bytes without "
                    "one (truncated, or not a checkpoint)",
                    name, kMagic, bytes.size()));
  }
  const std::string_view body(bytes.data(), bytes.size() - kTrailerSize);
  const std::string_view stored_hash(bytes.data() + bytes.size() - 64, 64);
  if (hash_bytes(body) != stored_hash) {
    throw DataError(
        fmt::format("{}: checkpoint is corrupt: the SHA-256 of its contents does not match the one "
                    "stored when it was written",
                    name));
  }
  try {
    archive.load_from(body.data(), body.size());
  } catch (const c10::Error& e) {
    throw DataError(fmt::format("{}: cannot read checkpoint archive: {}", name, first_line(e)));
  }
}

json read_meta_json(InputArchive& archive, const std::filesystem::path& file) {
  try {
    c10::IValue value;
    archive.read(kMetaKey, value);
    json j = json::parse(value.toStringRef());
    if (j.at("format") != kFormatName) {
      throw DataError(fmt::format("{}: expected checkpoint format '{}', got {}", to_utf8(file), kFormatName,
                                  j.at("format").dump()));
    }
    const int version = j.at("version").get<int>();
    if (version > kFormatVersion) {
      throw DataError(
          fmt::format("{}: expected checkpoint format version <= {}, got {} (written by a newer vigil)",
                      to_utf8(file), kFormatVersion, version));
    }
    return j;
  } catch (const c10::Error& e) {
    throw DataError(fmt::format("{}: checkpoint has no readable metadata: {}", to_utf8(file), first_line(e)));
  } catch (const json::exception& e) {
    throw DataError(fmt::format("{}: checkpoint metadata is malformed: {}", to_utf8(file), e.what()));
  }
}

// Reads the stored tensors in the model's order after checking names, shapes and dtypes, so a mismatch is
// reported before the model changes.
std::vector<torch::Tensor> read_matching_tensors(InputArchive& archive, const json& j,
                                                 const std::vector<NamedTensor>& current,
                                                 const std::filesystem::path& file) {
  const auto& saved = j.at("model");
  std::map<std::string, size_t> index_of;
  for (size_t i = 0; i < saved.size(); ++i) index_of[saved[i].at("name").get<std::string>()] = i;
  const std::string arch = j.at("arch").get<std::string>();
  auto mismatch = [&](const std::string& what) {
    return InvalidArgument(
        fmt::format("{} (architecture '{}') does not match the model: {}", to_utf8(file), arch, what));
  };
  std::vector<torch::Tensor> out;
  for (const auto& t : current) {
    auto it = index_of.find(t.name);
    if (it == index_of.end()) throw mismatch(fmt::format("key '{}' is missing from the checkpoint", t.name));
    const size_t index = it->second;
    const auto& entry = saved[index];
    const auto shape = entry.at("shape").get<std::vector<int64_t>>();
    if (shape != t.tensor.sizes().vec()) {
      throw mismatch(fmt::format("key '{}': expected shape {}, got {}", t.name,
                                 shape_text(t.tensor.sizes().vec()), shape_text(shape)));
    }
    if (entry.at("dtype").get<std::string>() != dtype_name(t.tensor)) {
      throw mismatch(fmt::format("key '{}': expected dtype {}, got {}", t.name, dtype_name(t.tensor),
                                 entry.at("dtype").get<std::string>()));
    }
    index_of.erase(it);
    torch::Tensor stored;
    try {
      archive.read(tensor_key(index), stored, /*is_buffer=*/true);
    } catch (const c10::Error& e) {
      throw DataError(fmt::format("{}: cannot read tensor '{}': {}", to_utf8(file), t.name, first_line(e)));
    }
    out.push_back(stored);
  }
  if (!index_of.empty()) {
    // Report the first extra key in stored order, which is the model's registration order.
    size_t first = saved.size();
    for (const auto& [name, i] : index_of) first = std::min(first, i);
    throw mismatch(fmt::format("key '{}' is in the checkpoint but not in the model",
                               saved[first].at("name").get<std::string>()));
  }
  return out;
}

void load_optimizer(InputArchive& archive, const Checkpoint& meta, torch::optim::Optimizer& optimizer,
                    const std::filesystem::path& file) {
  const std::string kind = optimizer_kind(optimizer);
  if (meta.optimizer.empty()) {
    throw InvalidArgument(
        fmt::format("{} holds no optimizer state; expected a weights-only load (no optimizer), "
                    "got a {} optimizer to restore",
                    to_utf8(file), kind));
  }
  if (meta.optimizer != kind) {
    throw InvalidArgument(fmt::format("{}: expected a {} optimizer to restore the saved state into, got {}",
                                      to_utf8(file), meta.optimizer, kind));
  }
  try {
    InputArchive opt_archive;
    archive.read(kOptimizerKey, opt_archive);
    optimizer.state().clear();  // load() only overwrites entries it has, stale moments would survive
    optimizer.load(opt_archive);
  } catch (const c10::Error& e) {
    throw InvalidArgument(fmt::format("{}: the saved optimizer state does not fit this optimizer: {}",
                                      to_utf8(file), first_line(e)));
  }
}

void restore_generator(InputArchive& archive, const std::filesystem::path& file) {
  torch::Tensor state;
  try {
    archive.read(kGeneratorKey, state, /*is_buffer=*/true);
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
  } catch (const c10::Error& e) {
    throw DataError(fmt::format("{}: cannot restore the random generator: {}", to_utf8(file), first_line(e)));
  }
}

}  // namespace

std::vector<torch::Tensor> state_tensors(const torch::nn::Module& model) {
  std::vector<torch::Tensor> out;
  for (auto& t : model_tensors(model)) out.push_back(std::move(t.tensor));
  return out;
}

void save_checkpoint(const std::filesystem::path& file, const Checkpoint& meta, torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer) {
  const auto tensors = model_tensors(model);
  const std::string kind = optimizer != nullptr ? optimizer_kind(*optimizer) : "";
  std::string bytes;
  try {
    OutputArchive archive;
    archive.write(kMetaKey, c10::IValue(meta_to_json(meta, tensors, kind).dump()));
    for (size_t i = 0; i < tensors.size(); ++i) {
      archive.write(tensor_key(i), tensors[i].tensor.detach(), /*is_buffer=*/true);
    }
    for (size_t i = 0; i < meta.extra_tensors.size(); ++i) {
      archive.write(extra_tensor_key(i), meta.extra_tensors[i].detach(), /*is_buffer=*/true);
    }
    if (optimizer != nullptr) {
      OutputArchive opt_archive(archive.compilation_unit());
      optimizer->save(opt_archive);
      archive.write(kOptimizerKey, opt_archive);
    }
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      archive.write(kGeneratorKey, gen.get_state(), /*is_buffer=*/true);
    }
    archive.save_to([&bytes](const void* data, size_t size) {
      bytes.append(static_cast<const char*>(data), size);
      return size;
    });
  } catch (const c10::Error& e) {
    throw IoError(fmt::format("{}: cannot serialise checkpoint: {}", to_utf8(file), first_line(e)));
  }
  const std::string digest = hash_bytes(bytes);
  bytes.append(kMagic);
  bytes.append(digest);
  write_file_atomic(file, bytes);
}

Checkpoint load_checkpoint(const std::filesystem::path& file, torch::nn::Module& model,
                           torch::optim::Optimizer* optimizer) {
  InputArchive archive;
  open_archive(file, archive);
  const json j = read_meta_json(archive, file);
  Checkpoint meta;
  std::vector<torch::Tensor> stored;
  const auto current = model_tensors(model);
  try {
    meta = meta_from_json(j);
    stored = read_matching_tensors(archive, j, current, file);
    const auto extra = j.value("extra_tensors", size_t{0});
    for (size_t i = 0; i < extra; ++i) {
      torch::Tensor t;
      try {
        archive.read(extra_tensor_key(i), t, /*is_buffer=*/true);
      } catch (const c10::Error& e) {
        throw DataError(fmt::format("{}: cannot read extra tensor {}: {}", to_utf8(file), i, first_line(e)));
      }
      meta.extra_tensors.push_back(t);
    }
  } catch (const json::exception& e) {
    throw DataError(fmt::format("{}: checkpoint metadata is malformed: {}", to_utf8(file), e.what()));
  }
  if (optimizer != nullptr) load_optimizer(archive, meta, *optimizer, file);
  restore_generator(archive, file);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < current.size(); ++i) current[i].tensor.copy_(stored[i]);
  return meta;
}

std::string optimizer_kind(const torch::optim::Optimizer& optimizer) {
  const auto* p = &optimizer;
  if (dynamic_cast<const torch::optim::SGD*>(p) != nullptr) return "sgd";
  if (dynamic_cast<const torch::optim::AdamW*>(p) != nullptr) return "adamw";
  if (dynamic_cast<const torch::optim::Adam*>(p) != nullptr) return "adam";
  if (dynamic_cast<const torch::optim::RMSprop*>(p) != nullptr) return "rmsprop";
  if (dynamic_cast<const torch::optim::Adagrad*>(p) != nullptr) return "adagrad";
  if (dynamic_cast<const torch::optim::LBFGS*>(p) != nullptr) return "lbfgs";
  return "unknown";
}

Checkpoint read_checkpoint_meta(const std::filesystem::path& file) {
  InputArchive archive;
  open_archive(file, archive);
  const json j = read_meta_json(archive, file);
  try {
    return meta_from_json(j);
  } catch (const json::exception& e) {
    throw DataError(fmt::format("{}: checkpoint metadata is malformed: {}", to_utf8(file), e.what()));
  }
}

std::string rng_state_string(const std::mt19937_64& rng) {
  std::ostringstream out;
  out << rng;
  return out.str();
}

void restore_rng_state(std::mt19937_64& rng, const std::string& state) {
  std::istringstream in(state);
  std::mt19937_64 restored;
  in >> restored;
  if (in.fail()) {
    throw DataError(fmt::format("expected a std::mt19937_64 state ({} numbers), got unreadable text",
                                std::mt19937_64::state_size));
  }
  rng = restored;
}

}  // namespace vigil::model
