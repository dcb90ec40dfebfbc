#pragma once
/// A small, defensive Python-pickle reader for the subset torch.save emits (protocols 2-4).
/// LibTorch's own unpickler rejects collections.OrderedDict with a `_metadata` attribute (the format of every
/// published torchvision .pth file) and aborts on unknown classes; this one keeps unknown objects as opaque
/// values so a checkpoint with an optimizer, argparse.Namespace or numpy scalars still yields its tensors.
/// Every malformed input becomes a DataError, never a crash.

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace vigil::nn::detail {

struct PyValue;
using PyRef = std::shared_ptr<PyValue>;

/// One unpickled Python value. Containers are shared (pickle's memo refers to them by identity).
struct PyValue {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kBytes,
    kTuple,
    kList,
    kDict,
    kGlobal,
    kTensor,
    kOther
  };
  Kind kind = Kind::kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0.0;
  std::string s;                              ///< string, bytes, or "module.name" for kGlobal / kOther
  std::vector<PyRef> items;                   ///< tuple / list / opaque call arguments
  std::vector<std::pair<PyRef, PyRef>> dict;  ///< dict items in insertion order
  torch::Tensor tensor;

  PyValue() = default;
  PyValue(const PyValue&) = delete;
  PyValue& operator=(const PyValue&) = delete;
  /// Frees nested containers iteratively: a corrupt or hostile pickle can nest lists a million deep.
  ~PyValue();

  /// Python-ish type name for messages ("dict", "int", "tensor", "argparse.Namespace").
  std::string type_name() const;
};

/// A persistent id ('storage', StorageType, key, location, numel[, view]) resolved to a 1-D tensor of `numel`
/// elements whose data may be filled later (the legacy format stores the bytes after the pickle).
using StorageLoader =
    std::function<torch::Tensor(const std::string& key, torch::ScalarType dtype, int64_t numel)>;

/// Reads consecutive pickles from one buffer. Error messages start with `context` (file and record).
class PickleReader {
 public:
  PickleReader(std::string_view data, StorageLoader loader, std::string context);

  /// Unpickles the next object (up to STOP). Throws DataError on malformed input.
  PyRef load();
  /// Byte offset just after the last STOP.
  size_t position() const { return pos_; }

 private:
  [[noreturn]] void fail(const std::string& what) const;
  uint8_t read_u8();
  std::string_view read_bytes(size_t n);
  template <typename T>
  T read_le();
  std::string read_line();

  PyRef pop();
  std::vector<PyRef> pop_to_mark();
  PyRef& top();
  bool dispatch(uint8_t op);
  bool dispatch_calls(uint8_t op);
  bool dispatch_containers(uint8_t op);
  bool dispatch_dicts(uint8_t op);
  bool dispatch_memo(uint8_t op);
  void set_items(const PyRef& dict, const std::vector<PyRef>& kv);
  PyRef make_global(const std::string& module, const std::string& name);
  PyRef reduce(const PyRef& callable, const PyRef& args);
  PyRef rebuild_tensor(const std::vector<PyRef>& args);
  PyRef persistent_load(const PyRef& pid);

  std::string_view data_;
  size_t pos_ = 0;
  StorageLoader loader_;
  std::string context_;
  std::vector<PyRef> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, PyRef> memo_;
};

/// Scalar type of a torch storage class name ("FloatStorage" -> kFloat); false when unknown.
bool storage_dtype(const std::string& class_name, torch::ScalarType* out);
/// The storage class name torch.save uses for a dtype ("FloatStorage"); throws InvalidArgument when none.
std::string storage_class_name(torch::ScalarType dtype);

/// Pickles an ordered str -> tensor mapping as torch.save does: collections.OrderedDict of
/// torch._utils._rebuild_tensor_v2 calls whose storages are persistent ids "0", "1", ... (in order).
std::string pickle_state_dict(const std::vector<std::pair<std::string, torch::Tensor>>& items);

}  // namespace vigil::nn::detail
