#include "vigil/nn/weights.h"

#include <caffe2/serialize/inline_container.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/script.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <unordered_set>

#include "nn/pickle_reader.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"

namespace vigil::nn {

namespace {

using detail::PickleReader;
using detail::PyRef;
using detail::PyValue;
using Kind = PyValue::Kind;

constexpr const char* kCheckpointKeys[] = {"model", "state_dict", "model_state_dict", "ema"};
constexpr const char* kLegacyHint =
    "legacy (pre-1.6) torch.save format: if Python reads it, re-save with torch.save(..., "
    "_use_new_zipfile_serialization=True)";
constexpr size_t kListedKeys = 5;  // keys quoted per category in error messages

std::string first_line(const char* text) {
  std::string s(text);
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

std::string shape_str(c10::IntArrayRef sizes) {
  return fmt::format("[{}]", fmt::join(sizes, ", "));
}

std::string dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat:
      return "float32";
    case torch::kDouble:
      return "float64";
    case torch::kHalf:
      return "float16";
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kLong:
      return "int64";
    case torch::kInt:
      return "int32";
    case torch::kShort:
      return "int16";
    case torch::kChar:
      return "int8";
    case torch::kByte:
      return "uint8";
    case torch::kBool:
      return "bool";
    case torch::kComplexFloat:
      return "complex64";
    case torch::kComplexDouble:
      return "complex128";
    default:
      return c10::toString(t);
  }
}

bool is_tensor_dict(const PyValue& v) {
  if (v.kind != Kind::kDict) return false;
  for (const auto& [k, val] : v.dict)
    if (k->kind != Kind::kString || val->kind != Kind::kTensor) return false;
  return true;
}

const PyValue* dict_get(const PyValue& d, const std::string& key) {
  for (const auto& [k, v] : d.dict)
    if (k->kind == Kind::kString && k->s == key) return v.get();
  return nullptr;
}

std::string describe_keys(const PyValue& d) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : d.dict) {
    if (parts.size() == 12) {
      parts.push_back("...");
      break;
    }
    parts.push_back(fmt::format("{} ({})", k->kind == Kind::kString ? k->s : k->type_name(), v->type_name()));
  }
  return parts.empty() ? "none" : fmt::format("{}", fmt::join(parts, ", "));
}

// Picks the dict of tensors inside an unpickled object: the object itself or a checkpoint entry.
const PyValue& find_state_dict(const PyValue& root, const std::string& file) {
  if (is_tensor_dict(root)) return root;
  if (root.kind == Kind::kDict) {
    for (const char* key : kCheckpointKeys) {
      const PyValue* v = dict_get(root, key);
      if (v && is_tensor_dict(*v) && !v->dict.empty()) {
        spdlog::info("{}: checkpoint file, using the tensors under '{}' (top-level keys: {})", file, key,
                     describe_keys(root));
        return *v;
      }
    }
    throw DataError(
        fmt::format("{}: no state dict found: expected a dict of tensors or a checkpoint dict with a dict of "
                    "tensors under one "
                    "of 'model', 'state_dict', 'model_state_dict', 'ema'; top-level keys: {}",
                    file, describe_keys(root)));
  }
  if (root.kind == Kind::kOther)
    throw DataError(
        fmt::format("{}: holds a pickled '{}' object, not a state dict; in Python save model.state_dict() "
                    "instead of the model",
                    file, root.s));
  throw DataError(
      fmt::format("{}: holds a {}, expected a dict of tensors (a state dict)", file, root.type_name()));
}

StateDict to_state_dict(const PyValue& root, const std::string& file) {
  const PyValue& d = find_state_dict(root, file);
  std::vector<std::pair<std::string, torch::Tensor>> items;
  for (const auto& [k, v] : d.dict) items.emplace_back(k->s, v->tensor);
  // nn.DataParallel / DistributedDataParallel save every key under "module." (sometimes twice).
  const std::string prefix = "module.";
  int stripped = 0;
  while (!items.empty() && std::all_of(items.begin(), items.end(), [&](const auto& kv) {
    return kv.first.rfind(prefix, 0) == 0 && kv.first.size() > prefix.size();
  })) {
    for (auto& kv : items) kv.first.erase(0, prefix.size());
    ++stripped;
  }
  if (stripped > 0)
    spdlog::info("{}: stripped the DataParallel prefix 'module.' from every key ({}x)", file, stripped);
  StateDict out;
  out.reserve(items.size());
  for (auto& [k, v] : items) {
    if (out.contains(k)) throw DataError(fmt::format("{}: duplicate key '{}'", file, k));
    out.insert(k, v);
  }
  return out;
}

void collect_script_tensors(const torch::jit::Module& m, const std::string& prefix, StateDict& out) {
  // state_dict order: a module's own parameters, then its buffers, then its children.
  for (const auto& p : m.named_parameters(false)) out.insert(prefix + p.name, p.value.detach());
  for (const auto& b : m.named_buffers(false)) out.insert(prefix + b.name, b.value.detach());
  for (const auto& c : m.named_children()) collect_script_tensors(c.value, prefix + c.name + ".", out);
}

StateDict read_torchscript(const std::filesystem::path& file) {
  torch::jit::Module m;
  try {
    m = torch::jit::load(file.string(), torch::kCPU);
  } catch (const c10::Error& e) {
    throw DataError(fmt::format("{}: TorchScript archive could not be loaded: {}", file.string(),
                                first_line(e.what_without_backtrace())));
  }
  StateDict out;
  collect_script_tensors(m, "", out);
  spdlog::info("{}: TorchScript archive, {} parameters and buffers", file.string(), out.size());
  return out;
}

torch::Tensor tensor_from_record(caffe2::serialize::PyTorchStreamReader& reader, const std::string& record,
                                 torch::ScalarType dtype, int64_t numel, const std::string& file) {
  if (!reader.hasRecord(record))
    throw DataError(
        fmt::format("{}: the archive lacks the storage record '{}' (damaged file?)", file, record));
  auto [data, nbytes] = reader.getRecord(record);
  const auto need = static_cast<size_t>(numel) * c10::elementSize(dtype);
  if (static_cast<size_t>(numel) > nbytes / c10::elementSize(dtype))
    throw DataError(fmt::format("{}: storage '{}' has {} bytes, expected {} ({} x {})", file, record, nbytes,
                                need, numel, dtype_name(dtype)));
  if (numel == 0) return torch::empty({0}, dtype);
  // Keep the record's buffer alive as the tensor's storage: no copy of large weights.
  auto holder = std::make_shared<at::DataPtr>(std::move(data));
  void* raw = holder->get();
  return torch::from_blob(
      raw, {numel}, [holder](void*) mutable { holder.reset(); }, torch::TensorOptions().dtype(dtype));
}

StateDict read_zip(const std::filesystem::path& file) {
  const std::string name = file.string();
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(name);
  } catch (const c10::Error& e) {
    throw DataError(fmt::format("{}: damaged zip archive (truncated download or copy?): {}", name,
                                first_line(e.what_without_backtrace())));
  }
  if (reader->hasRecord("constants.pkl") || reader->hasRecord("code/__torch__.py"))
    return read_torchscript(file);
  if (!reader->hasRecord("data.pkl"))
    throw DataError(fmt::format("{}: zip archive without data.pkl: not a file written by torch.save", name));
  auto [pkl, size] = reader->getRecord("data.pkl");
  std::map<std::string, torch::Tensor> storages;
  auto loader = [&](const std::string& key, torch::ScalarType dtype, int64_t numel) {
    auto it = storages.find(key);
    if (it != storages.end()) {
      if (it->second.scalar_type() != dtype || it->second.numel() != numel)
        throw DataError(fmt::format("{}: storage '{}' is used with two dtypes or sizes", name, key));
      return it->second;
    }
    auto t = tensor_from_record(*reader, "data/" + key, dtype, numel, name);
    storages.emplace(key, t);
    return t;
  };
  PickleReader unpickler(std::string_view(static_cast<const char*>(pkl.get()), size), loader,
                         name + ":data.pkl");
  return to_state_dict(*unpickler.load(), name);
}

// Legacy torch.save: pickles of the magic number, protocol version, system info, the object and the sorted
// storage keys, then each storage as an int64 element count followed by its raw little-endian bytes.
PyRef read_legacy_unchecked(const std::filesystem::path& file) {
  const std::string name = file.string();
  const std::string bytes = read_file(file);
  static const std::string kMagic("\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 12);
  if (bytes.size() < 14 || bytes.compare(2, kMagic.size(), kMagic) != 0)
    throw DataError(fmt::format("{}: a Python pickle but not a file written by torch.save", name));
  std::map<std::string, torch::Tensor> storages;
  auto loader = [&](const std::string& key, torch::ScalarType dtype, int64_t numel) {
    auto it = storages.find(key);
    if (it != storages.end()) return it->second;
    if (numel > static_cast<int64_t>(bytes.size()))
      throw DataError(
          fmt::format("{}: storage '{}' claims {} elements, more than the file holds", name, key, numel));
    auto t = torch::empty({numel}, dtype);
    storages.emplace(key, t);
    return t;
  };
  PickleReader unpickler(bytes, loader, name);
  for (int k = 0; k < 3; ++k) unpickler.load();  // magic number, protocol version, sys_info
  PyRef root = unpickler.load();
  PyRef keys = unpickler.load();
  if (keys->kind != Kind::kList) throw DataError(fmt::format("{}: storage key list missing", name));
  size_t pos = unpickler.position();
  for (const auto& key : keys->items) {
    auto it = key->kind == Kind::kString ? storages.find(key->s) : storages.end();
    if (it == storages.end()) throw DataError(fmt::format("{}: unknown storage key", name));
    int64_t numel = 0;
    const auto nbytes = it->second.nbytes();
    if (bytes.size() - pos < 8 + nbytes)
      throw DataError(fmt::format("{}: file truncated in storage '{}'", name, key->s));
    std::memcpy(&numel, bytes.data() + pos, 8);
    if (numel != it->second.numel())
      throw DataError(fmt::format("{}: storage '{}' size mismatch", name, key->s));
    if (nbytes > 0) std::memcpy(it->second.data_ptr(), bytes.data() + pos + 8, nbytes);
    pos += 8 + nbytes;
  }
  if (keys->items.size() != storages.size())  // a storage never filled would hold garbage
    throw DataError(
        fmt::format("{}: {} storages used but {} stored", name, storages.size(), keys->items.size()));
  spdlog::info("{}: legacy (pre-1.6) torch.save file read", name);
  return root;
}

StateDict read_legacy(const std::filesystem::path& file) {
  PyRef root;
  try {
    root = read_legacy_unchecked(file);
  } catch (const DataError& e) {
    throw DataError(fmt::format("{} ({})", e.what(), kLegacyHint));
  }
  return to_state_dict(*root, file.string());
}

StateDict read_any(const std::filesystem::path& file) {
  const std::string name = file.string();
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) throw NotFound(fmt::format("weights file {} does not exist", name));
  if (std::filesystem::is_directory(file, ec))
    throw DataError(fmt::format("{}: is a directory, expected a PyTorch weight file", name));
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open for reading", name));
  char head[4] = {0, 0, 0, 0};
  in.read(head, 4);
  const auto got = in.gcount();
  if (got == 0)
    throw DataError(fmt::format("{}: empty file (0 bytes), expected a PyTorch weight file", name));
  if (got >= 2 && head[0] == 'P' && head[1] == 'K') return read_zip(file);
  if (static_cast<uint8_t>(head[0]) == 0x80) return read_legacy(file);
  std::string hex;
  for (int k = 0; k < got; ++k) hex += fmt::format("{:02x} ", static_cast<uint8_t>(head[k]));
  throw DataError(fmt::format(
      "{}: not a PyTorch weight file: expected a zip archive from torch.save / torch.jit.save (starting with "
      "'PK') or a legacy torch.save pickle, got bytes {}",
      name, hex));
}

}  // namespace

StateDict read_state_dict(const std::filesystem::path& file) {
  try {
    return read_any(file);
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw DataError(
        fmt::format("{}: cannot read weights: {}", file.string(), first_line(e.what_without_backtrace())));
  } catch (const std::exception& e) {
    throw DataError(fmt::format("{}: cannot read weights: {}", file.string(), e.what()));
  }
}

void save_state_dict(const StateDict& dict, const std::filesystem::path& file) {
  std::vector<std::pair<std::string, torch::Tensor>> items;
  items.reserve(dict.size());
  for (const auto& item : dict) {
    VIGIL_CHECK(item.value().defined(), "expected a defined tensor for '{}', got an undefined one",
                item.key());
    items.emplace_back(item.key(), item.value().detach().to(torch::kCPU).contiguous());
  }
  const std::string pkl = detail::pickle_state_dict(items);
  std::string buffer;
  try {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t n) {
      buffer.append(static_cast<const char*>(data), n);
      return n;
    });
    writer.writeRecord("data.pkl", pkl.data(), pkl.size());
    for (size_t k = 0; k < items.size(); ++k) {
      const auto& t = items[k].second;
      writer.writeRecord("data/" + std::to_string(k), t.data_ptr(), t.nbytes());
    }
    writer.writeEndOfFile();
  } catch (const c10::Error& e) {
    throw IoError(fmt::format("{}: writing the archive failed: {}", file.string(),
                              first_line(e.what_without_backtrace())));
  }
  write_file_atomic(file, buffer);
}

// ---- loading into a module ----

namespace {

bool starts_with_any(const std::string& key, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes)
    if (key.rfind(p, 0) == 0) return true;
  return false;
}

// Why the prefix options leave `key` alone, or nullopt when it takes part.
std::optional<std::string> filtered_out(const std::string& key, const LoadOptions& opt) {
  if (starts_with_any(key, opt.skip_prefixes)) return "skip_prefixes";
  if (!opt.only_prefixes.empty() && !starts_with_any(key, opt.only_prefixes)) return "not in only_prefixes";
  return std::nullopt;
}

bool is_bn_counter(const std::string& key) {
  const std::string suffix = "num_batches_tracked";
  return key.size() >= suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int dtype_kind(torch::ScalarType t) {
  if (t == torch::kBool) return 0;
  if (c10::isComplexType(t)) return 1;
  if (c10::isFloatingType(t)) return 2;
  return 3;  // integers
}

void copy_one(const std::string& key, torch::Tensor dst, const torch::Tensor& src, const LoadOptions& opt,
              LoadReport& rep) {
  std::string clash;
  if (dtype_kind(dst.scalar_type()) != dtype_kind(src.scalar_type())) {
    clash = fmt::format("{}: expected dtype {}, got {}", key, dtype_name(dst.scalar_type()),
                        dtype_name(src.scalar_type()));
  } else if (dst.sizes() != src.sizes() && !(is_bn_counter(key) && dst.numel() == src.numel())) {
    clash = fmt::format("{}: expected {}, got {}", key, shape_str(dst.sizes()), shape_str(src.sizes()));
  }
  if (!clash.empty()) {
    rep.shape_mismatches.push_back(clash);
    if (opt.skip_shape_mismatch) rep.skipped.push_back(fmt::format("{} (mismatch: {})", key, clash));
    return;
  }
  dst.copy_(src.reshape(dst.sizes()));
  rep.loaded.push_back(key);
}

std::string list_some(const std::vector<std::string>& keys) {
  std::vector<std::string> head(keys.begin(), keys.begin() + std::min(keys.size(), kListedKeys));
  std::string out = fmt::format("{}", fmt::join(head, ", "));
  if (keys.size() > kListedKeys) out += fmt::format(", ... ({} more)", keys.size() - kListedKeys);
  return out;
}

// A hint when file keys are module keys under an extra prefix (or the other way round).
std::string prefix_hint(const std::vector<std::string>& missing, const std::vector<std::string>& unexpected) {
  for (size_t m = 0; m < std::min<size_t>(missing.size(), 20); ++m) {
    for (size_t u = 0; u < std::min<size_t>(unexpected.size(), 200); ++u) {
      const auto& a = missing[m];
      const auto& b = unexpected[u];
      if (b.size() > a.size() && b.compare(b.size() - a.size(), a.size(), a) == 0 &&
          b[b.size() - a.size() - 1] == '.')
        return fmt::format(" (file keys carry an extra prefix '{}': e.g. '{}' vs '{}')",
                           b.substr(0, b.size() - a.size()), b, a);
      if (a.size() > b.size() && a.compare(a.size() - b.size(), b.size(), b) == 0 &&
          a[a.size() - b.size() - 1] == '.')
        return fmt::format(" (module keys carry an extra prefix '{}': e.g. '{}' vs '{}')",
                           a.substr(0, a.size() - b.size()), a, b);
    }
  }
  return "";
}

std::string strict_message(const LoadReport& rep, size_t module_keys, size_t file_keys) {
  const size_t matched = rep.loaded.size() + rep.shape_mismatches.size();
  std::string msg = fmt::format("load_state_dict: {} of {} module keys match the file's {} keys", matched,
                                module_keys, file_keys);
  if (module_keys > 0 && matched * 10 < module_keys) msg += ": this file looks like a different architecture";
  msg += prefix_hint(rep.missing, rep.unexpected);
  if (!rep.missing.empty())
    msg += fmt::format("; {} missing: {}", rep.missing.size(), list_some(rep.missing));
  if (!rep.unexpected.empty())
    msg += fmt::format("; {} unexpected: {}", rep.unexpected.size(), list_some(rep.unexpected));
  if (!rep.shape_mismatches.empty())
    msg += fmt::format("; {} shape mismatches: {}", rep.shape_mismatches.size(),
                       list_some(rep.shape_mismatches));
  msg += " (LoadOptions: strict=false loads what matches, skip_shape_mismatch=true skips a resized head)";
  return msg;
}

}  // namespace

void LoadOptions::validate() const {
  for (const auto& p : skip_prefixes) VIGIL_CHECK(!p.empty(), "expected non-empty skip_prefixes, got \"\"");
  for (const auto& p : only_prefixes) VIGIL_CHECK(!p.empty(), "expected non-empty only_prefixes, got \"\"");
}

std::string LoadReport::to_text() const {
  std::string out =
      fmt::format("{} loaded, {} missing, {} unexpected, {} skipped, {} shape mismatches\n", loaded.size(),
                  missing.size(), unexpected.size(), skipped.size(), shape_mismatches.size());
  auto section = [&](const char* title, const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    out += fmt::format("{} ({}):\n", title, keys.size());
    for (const auto& k : keys) out += fmt::format("  {}\n", k);
  };
  section("missing (in the module, not in the file)", missing);
  section("unexpected (in the file, not in the module)", unexpected);
  section("skipped", skipped);
  section("shape mismatches", shape_mismatches);
  return out;
}

LoadReport load_state_dict(torch::nn::Module& module, const StateDict& dict, const LoadOptions& opt) {
  opt.validate();
  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (const auto& p : module.named_parameters(true)) targets.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) targets.emplace_back(b.key(), b.value());
  LoadReport rep;
  std::unordered_set<std::string> target_keys;
  torch::NoGradGuard no_grad;
  for (auto& [key, dst] : targets) {
    target_keys.insert(key);
    if (auto why = filtered_out(key, opt)) {
      rep.skipped.push_back(fmt::format("{} ({})", key, *why));
    } else if (const torch::Tensor* src = dict.find(key)) {
      copy_one(key, dst, *src, opt, rep);
    } else if (is_bn_counter(key)) {
      rep.skipped.push_back(key + " (not in the file; the module's counter is kept)");
    } else {
      rep.missing.push_back(key);
    }
  }
  for (const auto& item : dict) {
    const auto& key = item.key();
    if (target_keys.count(key)) continue;
    if (auto why = filtered_out(key, opt)) {
      rep.skipped.push_back(fmt::format("{} ({})", key, *why));
    } else if (is_bn_counter(key)) {
      rep.skipped.push_back(key + " (no such buffer in the module)");
    } else {
      rep.unexpected.push_back(key);
    }
  }
  const bool mismatch_error = !rep.shape_mismatches.empty() && !opt.skip_shape_mismatch;
  if (opt.strict && (!rep.missing.empty() || !rep.unexpected.empty() || mismatch_error))
    throw InvalidArgument(strict_message(rep, targets.size(), dict.size()));
  spdlog::debug("load_state_dict: {}", rep.to_text());
  return rep;
}

std::string describe_state_dict(const StateDict& dict) {
  size_t width = 0;
  for (const auto& item : dict) width = std::max(width, std::min<size_t>(item.key().size(), 64));
  std::string out;
  int64_t elements = 0;
  int64_t float_elements = 0;
  size_t bytes = 0;
  for (const auto& item : dict) {
    const auto& t = item.value();
    out += fmt::format("{:<{}}  {:<8}  {}\n", item.key(), width, dtype_name(t.scalar_type()),
                       shape_str(t.sizes()));
    elements += t.numel();
    if (t.is_floating_point()) float_elements += t.numel();
    bytes += t.numel() * t.element_size();
  }
  out += fmt::format("{} tensors, {} elements ({} floating-point), {:.1f} MiB\n", dict.size(), elements,
                     float_elements, static_cast<double>(bytes) / (1024.0 * 1024.0));
  return out;
}

}  // namespace vigil::nn
