#include "nn/pickle_reader.h"

#include <fmt/format.h>

#include <cstring>
#include <limits>

#include "vigil/core/error.h"

namespace vigil::nn::detail {

namespace {

using Kind = PyValue::Kind;

PyRef make(Kind kind) {
  auto v = std::make_shared<PyValue>();
  v->kind = kind;
  return v;
}

PyRef make_int(int64_t i) {
  auto v = make(Kind::kInt);
  v->i = i;
  return v;
}

PyRef make_string(Kind kind, std::string_view s) {
  auto v = make(kind);
  v->s = std::string(s);
  return v;
}

PyRef make_sequence(Kind kind, std::vector<PyRef> items) {
  auto v = make(kind);
  v->items = std::move(items);
  return v;
}

struct StorageName {
  const char* name;
  torch::ScalarType dtype;
};

constexpr StorageName kStorageNames[] = {
    {"FloatStorage", torch::kFloat},
    {"DoubleStorage", torch::kDouble},
    {"HalfStorage", torch::kHalf},
    {"BFloat16Storage", torch::kBFloat16},
    {"LongStorage", torch::kLong},
    {"IntStorage", torch::kInt},
    {"ShortStorage", torch::kShort},
    {"CharStorage", torch::kChar},
    {"ByteStorage", torch::kByte},
    {"BoolStorage", torch::kBool},
    {"ComplexFloatStorage", torch::kComplexFloat},
    {"ComplexDoubleStorage", torch::kComplexDouble},
};

// Opcodes of pickle protocols 2-4 (Lib/pickle.py names).
enum Op : uint8_t {
  kMark = '(',
  kStop = '.',
  kPop = '0',
  kPopMark = '1',
  kDup = '2',
  kBinInt = 'J',
  kBinInt1 = 'K',
  kBinInt2 = 'M',
  kNone = 'N',
  kBinPersId = 'Q',
  kReduce = 'R',
  kBinString = 'T',
  kShortBinString = 'U',
  kBinUnicode = 'X',
  kAppend = 'a',
  kBuild = 'b',
  kGlobal = 'c',
  kDict = 'd',
  kEmptyDict = '}',
  kAppends = 'e',
  kBinGet = 'h',
  kLongBinGet = 'j',
  kList = 'l',
  kEmptyList = ']',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kSetItem = 's',
  kTuple = 't',
  kEmptyTuple = ')',
  kSetItems = 'u',
  kBinFloat = 'G',
  kBinBytes = 'B',
  kShortBinBytes = 'C',
  kProto = 0x80,
  kNewObj = 0x81,
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kLong1 = 0x8a,
  kLong4 = 0x8b,
  kShortBinUnicode = 0x8c,
  kBinUnicode8 = 0x8d,
  kBinBytes8 = 0x8e,
  kEmptySet = 0x8f,
  kAddItems = 0x90,
  kFrozenSet = 0x91,
  kNewObjEx = 0x92,
  kStackGlobal = 0x93,
  kMemoize = 0x94,
  kFrame = 0x95,
};

std::vector<int64_t> int_tuple(const PyRef& v, const char* what, const std::string& context) {
  if (v->kind != Kind::kTuple && v->kind != Kind::kList)
    throw DataError(fmt::format("{}: corrupt pickle: tensor {} is a {}, expected a tuple", context, what,
                                v->type_name()));
  std::vector<int64_t> out;
  for (const auto& e : v->items) {
    if (e->kind != Kind::kInt || e->i < 0)
      throw DataError(fmt::format("{}: corrupt pickle: tensor {} holds {}", context, what, e->type_name()));
    out.push_back(e->i);
  }
  return out;
}

}  // namespace

PyValue::~PyValue() {
  thread_local std::vector<PyRef> pending;
  thread_local bool draining = false;
  for (auto& c : items) pending.push_back(std::move(c));
  for (auto& [k, v] : dict) {
    pending.push_back(std::move(k));
    pending.push_back(std::move(v));
  }
  if (draining) return;
  draining = true;
  while (!pending.empty()) {
    PyRef v = std::move(pending.back());
    pending.pop_back();
    v.reset();  // its children join `pending` instead of recursing
  }
  draining = false;
}

std::string PyValue::type_name() const {
  switch (kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kTuple:
      return "tuple";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kGlobal:
      return "class " + s;
    case Kind::kTensor:
      return "tensor";
    case Kind::kOther:
      return s;
  }
  return "?";
}

bool storage_dtype(const std::string& class_name, torch::ScalarType* out) {
  for (const auto& e : kStorageNames) {
    if (class_name == e.name) {
      *out = e.dtype;
      return true;
    }
  }
  return false;
}

std::string storage_class_name(torch::ScalarType dtype) {
  for (const auto& e : kStorageNames)
    if (e.dtype == dtype) return e.name;
  throw InvalidArgument(
      fmt::format("expected a tensor dtype torch.save can store, got {}", c10::toString(dtype)));
}

PickleReader::PickleReader(std::string_view data, StorageLoader loader, std::string context)
    : data_(data), loader_(std::move(loader)), context_(std::move(context)) {}

void PickleReader::fail(const std::string& what) const {
  throw DataError(fmt::format("{}: corrupt or unsupported pickle at byte {}: {}", context_, pos_, what));
}

uint8_t PickleReader::read_u8() {
  if (pos_ >= data_.size()) fail("unexpected end of data (truncated file?)");
  return static_cast<uint8_t>(data_[pos_++]);
}

std::string_view PickleReader::read_bytes(size_t n) {
  if (n > data_.size() - pos_) fail(fmt::format("a {}-byte field runs past the end of the data", n));
  auto out = data_.substr(pos_, n);
  pos_ += n;
  return out;
}

template <typename T>
T PickleReader::read_le() {
  // Pickle integers are little-endian, like every platform LibTorch supports.
  T v;
  std::memcpy(&v, read_bytes(sizeof(T)).data(), sizeof(T));
  return v;
}

std::string PickleReader::read_line() {
  auto end = data_.find('\n', pos_);
  if (end == std::string_view::npos) fail("unterminated text field");
  std::string out(data_.substr(pos_, end - pos_));
  pos_ = end + 1;
  return out;
}

PyRef PickleReader::pop() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) fail("stack underflow");
  auto v = std::move(stack_.back());
  stack_.pop_back();
  return v;
}

PyRef& PickleReader::top() {
  if (stack_.empty()) fail("stack underflow");
  return stack_.back();
}

std::vector<PyRef> PickleReader::pop_to_mark() {
  if (marks_.empty()) fail("MARK expected");
  size_t m = marks_.back();
  marks_.pop_back();
  std::vector<PyRef> out(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(m)),
                         std::make_move_iterator(stack_.end()));
  stack_.resize(m);
  return out;
}

PyRef PickleReader::load() {
  stack_.clear();
  marks_.clear();
  memo_.clear();
  while (true) {
    uint8_t op = read_u8();
    if (op == kStop) {
      if (stack_.size() != 1 || !marks_.empty()) fail("STOP with an unbalanced stack");
      return pop();
    }
    if (!dispatch(op) && !dispatch_calls(op) && !dispatch_containers(op) && !dispatch_dicts(op) &&
        !dispatch_memo(op))
      fail(fmt::format("unknown opcode 0x{:02x}", op));
  }
}

// Stack control and scalars.
bool PickleReader::dispatch(uint8_t op) {
  switch (op) {
    case kProto:
      read_u8();
      return true;
    case kFrame:
      read_le<uint64_t>();
      return true;
    case kMark:
      marks_.push_back(stack_.size());
      return true;
    case kPop:
      pop();
      return true;
    case kPopMark:
      pop_to_mark();
      return true;
    case kDup:
      stack_.push_back(top());
      return true;
    case kNone:
      stack_.push_back(make(Kind::kNone));
      return true;
    case kNewTrue:
    case kNewFalse: {
      auto v = make(Kind::kBool);
      v->b = op == kNewTrue;
      stack_.push_back(v);
      return true;
    }
    case kBinInt:
      stack_.push_back(make_int(read_le<int32_t>()));
      return true;
    case kBinInt1:
      stack_.push_back(make_int(read_u8()));
      return true;
    case kBinInt2:
      stack_.push_back(make_int(read_le<uint16_t>()));
      return true;
    case kLong1:
    case kLong4: {
      uint32_t n = op == kLong1 ? read_u8() : read_le<uint32_t>();
      auto bytes = read_bytes(n);
      if (n > 8) {  // a big int (e.g. an RNG seed): keep it as an opaque value rather than failing
        stack_.push_back(make_string(Kind::kOther, "int (big)"));
        return true;
      }
      uint64_t u = 0;
      for (size_t k = 0; k < n; ++k) u |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[k])) << (8 * k);
      if (n > 0 && n < 8 && (static_cast<uint8_t>(bytes[n - 1]) & 0x80)) u |= ~uint64_t{0} << (8 * n);
      stack_.push_back(make_int(static_cast<int64_t>(u)));
      return true;
    }
    case kBinFloat: {
      uint64_t bits = read_le<uint64_t>();
      bits = __builtin_bswap64(bits);  // BINFLOAT is big-endian
      auto v = make(Kind::kFloat);
      std::memcpy(&v->f, &bits, sizeof(double));
      stack_.push_back(v);
      return true;
    }
    default:
      return false;
  }
}

// Strings, globals and calls.
bool PickleReader::dispatch_calls(uint8_t op) {
  switch (op) {
    case kBinUnicode:
      stack_.push_back(make_string(Kind::kString, read_bytes(read_le<uint32_t>())));
      return true;
    case kShortBinUnicode:
      stack_.push_back(make_string(Kind::kString, read_bytes(read_u8())));
      return true;
    case kBinUnicode8:
      stack_.push_back(make_string(Kind::kString, read_bytes(read_le<uint64_t>())));
      return true;
    case kBinString:
      stack_.push_back(make_string(Kind::kString, read_bytes(read_le<uint32_t>())));
      return true;
    case kShortBinString:
      stack_.push_back(make_string(Kind::kString, read_bytes(read_u8())));
      return true;
    case kBinBytes:
      stack_.push_back(make_string(Kind::kBytes, read_bytes(read_le<uint32_t>())));
      return true;
    case kShortBinBytes:
      stack_.push_back(make_string(Kind::kBytes, read_bytes(read_u8())));
      return true;
    case kBinBytes8:
      stack_.push_back(make_string(Kind::kBytes, read_bytes(read_le<uint64_t>())));
      return true;
    case kGlobal: {
      auto module = read_line();
      auto name = read_line();
      stack_.push_back(make_global(module, name));
      return true;
    }
    case kStackGlobal: {
      auto name = pop();
      auto module = pop();
      if (module->kind != Kind::kString || name->kind != Kind::kString)
        fail("STACK_GLOBAL needs two strings");
      stack_.push_back(make_global(module->s, name->s));
      return true;
    }
    case kReduce: {
      auto args = pop();
      auto callable = pop();
      stack_.push_back(reduce(callable, args));
      return true;
    }
    case kNewObj:
    case kNewObjEx: {
      if (op == kNewObjEx) pop();  // kwargs
      pop();                       // args
      auto cls = pop();
      stack_.push_back(make_string(Kind::kOther, cls->kind == Kind::kGlobal ? cls->s : "object"));
      return true;
    }
    case kBuild:
      pop();
      top();
      return true;  // object state (e.g. OrderedDict._metadata) is not needed
    case kBinPersId:
      stack_.push_back(persistent_load(pop()));
      return true;
    default:
      return false;
  }
}

// Tuples and lists.
bool PickleReader::dispatch_containers(uint8_t op) {
  switch (op) {
    case kEmptyTuple:
      stack_.push_back(make(Kind::kTuple));
      return true;
    case kTuple:
      stack_.push_back(make_sequence(Kind::kTuple, pop_to_mark()));
      return true;
    case kTuple1:
    case kTuple2:
    case kTuple3: {
      size_t n = op - kTuple1 + 1;
      std::vector<PyRef> items(n);
      for (size_t k = n; k-- > 0;) items[k] = pop();
      stack_.push_back(make_sequence(Kind::kTuple, std::move(items)));
      return true;
    }
    case kEmptyList:
      stack_.push_back(make(Kind::kList));
      return true;
    case kList:
      stack_.push_back(make_sequence(Kind::kList, pop_to_mark()));
      return true;
    case kAppend: {
      auto v = pop();
      auto& list = top();
      if (list->kind != Kind::kList) fail("APPEND to a " + list->type_name());
      list->items.push_back(std::move(v));
      return true;
    }
    case kAppends: {
      auto items = pop_to_mark();
      auto& list = top();
      if (list->kind == Kind::kList)
        list->items.insert(list->items.end(), items.begin(), items.end());
      else if (list->kind != Kind::kOther)
        fail("APPENDS to a " + list->type_name());
      return true;
    }
    default:
      return false;
  }
}

// Dicts and sets.
bool PickleReader::dispatch_dicts(uint8_t op) {
  switch (op) {
    case kEmptyDict:
      stack_.push_back(make(Kind::kDict));
      return true;
    case kDict: {
      auto d = make(Kind::kDict);
      set_items(d, pop_to_mark());
      stack_.push_back(d);
      return true;
    }
    case kSetItem: {
      auto v = pop();
      auto k = pop();
      set_items(top(), {k, v});
      return true;
    }
    case kSetItems: {
      auto kv = pop_to_mark();
      set_items(top(), kv);
      return true;
    }
    case kEmptySet:
      stack_.push_back(make_string(Kind::kOther, "set"));
      return true;
    case kAddItems:
      pop_to_mark();
      top();
      return true;
    case kFrozenSet:
      pop_to_mark();
      stack_.push_back(make_string(Kind::kOther, "frozenset"));
      return true;
    default:
      return false;
  }
}

bool PickleReader::dispatch_memo(uint8_t op) {
  switch (op) {
    case kBinPut:
      memo_[read_u8()] = top();
      return true;
    case kLongBinPut:
      memo_[read_le<uint32_t>()] = top();
      return true;
    case kMemoize: {
      auto idx = static_cast<uint32_t>(memo_.size());
      memo_[idx] = top();
      return true;
    }
    case kBinGet:
    case kLongBinGet: {
      uint32_t idx = op == kBinGet ? read_u8() : read_le<uint32_t>();
      auto it = memo_.find(idx);
      if (it == memo_.end()) fail(fmt::format("memo entry {} used before it was stored", idx));
      stack_.push_back(it->second);
      return true;
    }
    default:
      return false;
  }
}

void PickleReader::set_items(const PyRef& dict, const std::vector<PyRef>& kv) {
  if (kv.size() % 2 != 0) fail("SETITEMS with an odd number of values");
  if (dict->kind == Kind::kOther) return;  // e.g. a custom class's __setitem__: contents not needed
  if (dict->kind != Kind::kDict) fail("SETITEM on a " + dict->type_name());
  for (size_t k = 0; k < kv.size(); k += 2) {
    bool replaced = false;
    if (kv[k]->kind == Kind::kString) {
      for (auto& item : dict->dict) {
        if (item.first->kind == Kind::kString && item.first->s == kv[k]->s) {
          item.second = kv[k + 1];
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) dict->dict.emplace_back(kv[k], kv[k + 1]);
  }
}

PyRef PickleReader::make_global(const std::string& module, const std::string& name) {
  return make_string(Kind::kGlobal, module + "." + name);
}

PyRef PickleReader::reduce(const PyRef& callable, const PyRef& args) {
  if (callable->kind != Kind::kGlobal) fail("REDUCE on a " + callable->type_name());
  if (args->kind != Kind::kTuple) fail("REDUCE arguments are a " + args->type_name());
  const std::string& name = callable->s;
  const auto& a = args->items;
  if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor")
    return rebuild_tensor(a);
  if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
    if (a.empty() || a[0]->kind != Kind::kTensor) fail(name + " without a tensor");
    return a[0];
  }
  if (name == "collections.OrderedDict" || name == "builtins.dict") {
    auto d = make(Kind::kDict);
    if (!a.empty() && (a[0]->kind == Kind::kList || a[0]->kind == Kind::kTuple)) {
      for (const auto& pair : a[0]->items)
        if (pair->kind == Kind::kTuple && pair->items.size() == 2) set_items(d, pair->items);
    }
    return d;
  }
  if (name == "torch._tensor._rebuild_from_type_v2" && a.size() >= 3) return reduce(a[0], a[2]);
  if (name == "torch.Size" && a.size() == 1 && a[0]->kind == Kind::kTuple) return a[0];
  return make_string(Kind::kOther, name);  // unknown class: opaque, so the rest of the file still loads
}

PyRef PickleReader::rebuild_tensor(const std::vector<PyRef>& a) {
  if (a.size() < 4 || a[0]->kind != Kind::kTensor || a[1]->kind != Kind::kInt)
    fail("_rebuild_tensor_v2 expects (storage, offset, size, stride, ...)");
  const auto& storage = a[0]->tensor;
  int64_t offset = a[1]->i;
  auto sizes = int_tuple(a[2], "size", context_);
  auto strides = int_tuple(a[3], "stride", context_);
  if (sizes.size() != strides.size()) fail("tensor size and stride have different lengths");
  // Bound the view inside its storage: a corrupt file must not read outside the buffer.
  if (sizes.size() > 64) fail("tensor has more than 64 dimensions");
  int64_t last = offset;
  int64_t numel = 1;
  for (size_t d = 0; d < sizes.size(); ++d) {
    int64_t span = 0;
    if (__builtin_mul_overflow(numel, sizes[d], &numel)) fail("tensor size overflows");
    if (sizes[d] > 0 && __builtin_mul_overflow(sizes[d] - 1, strides[d], &span))
      fail("tensor stride overflows");
    if (__builtin_add_overflow(last, span, &last)) fail("tensor stride overflows");
  }
  if (offset < 0 || (numel > 0 && last >= storage.numel()) || (numel == 0 && offset > storage.numel()))
    fail(fmt::format("tensor view (offset {}, last element {}) lies outside its storage of {} elements",
                     offset, last, storage.numel()));
  auto v = make(Kind::kTensor);
  v->tensor = storage.as_strided(sizes, strides, offset);
  return v;
}

PyRef PickleReader::persistent_load(const PyRef& pid) {
  const auto& a = pid->items;
  if (pid->kind != Kind::kTuple || a.size() < 5 || a[0]->kind != Kind::kString || a[0]->s != "storage")
    fail("persistent id is not ('storage', type, key, location, numel)");
  if (a[1]->kind != Kind::kGlobal) fail("storage type is a " + a[1]->type_name());
  torch::ScalarType dtype;
  auto cls = a[1]->s.substr(a[1]->s.rfind('.') + 1);
  if (!storage_dtype(cls, &dtype)) fail("unsupported storage type " + a[1]->s);
  if (a[2]->kind != Kind::kString || a[4]->kind != Kind::kInt || a[4]->i < 0)
    fail("storage key or size has the wrong type");
  auto storage = loader_(a[2]->s, dtype, a[4]->i);
  if (a.size() > 5 && a[5]->kind == Kind::kTuple && a[5]->items.size() == 3) {  // legacy storage view
    auto view = int_tuple(make_sequence(Kind::kTuple, {a[5]->items[1], a[5]->items[2]}), "view", context_);
    if (view[0] + view[1] > storage.numel()) fail("storage view outside its storage");
    storage = storage.narrow(0, view[0], view[1]);
  }
  auto v = make(Kind::kTensor);
  v->tensor = storage;
  return v;
}

// ---- writing ----

namespace {

void put_int(std::string& out, int64_t v) {
  if (v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max()) {
    auto i = static_cast<int32_t>(v);
    out.push_back(static_cast<char>(kBinInt));
    out.append(reinterpret_cast<const char*>(&i), 4);
  } else {
    out.push_back(static_cast<char>(kLong1));
    out.push_back(8);
    out.append(reinterpret_cast<const char*>(&v), 8);
  }
}

void put_string(std::string& out, const std::string& s) {
  auto n = static_cast<uint32_t>(s.size());
  out.push_back(static_cast<char>(kBinUnicode));
  out.append(reinterpret_cast<const char*>(&n), 4);
  out += s;
}

void put_global(std::string& out, const char* module, const std::string& name) {
  out += fmt::format("c{}\n{}\n", module, name);
}

void put_int_tuple(std::string& out, c10::IntArrayRef values) {
  out.push_back(static_cast<char>(kMark));
  for (auto v : values) put_int(out, v);
  out.push_back(static_cast<char>(kTuple));
}

}  // namespace

std::string pickle_state_dict(const std::vector<std::pair<std::string, torch::Tensor>>& items) {
  std::string out = "\x80\x02";
  put_global(out, "collections", "OrderedDict");
  out += ")R(";
  for (size_t k = 0; k < items.size(); ++k) {
    const auto& t = items[k].second;
    put_string(out, items[k].first);
    put_global(out, "torch._utils", "_rebuild_tensor_v2");
    out += "((";
    put_string(out, "storage");
    put_global(out, "torch", storage_class_name(t.scalar_type()));
    put_string(out, std::to_string(k));
    put_string(out, "cpu");
    put_int(out, t.numel());
    out += "tQ";
    put_int(out, 0);
    put_int_tuple(out, t.sizes());
    put_int_tuple(out, t.strides());
    out.push_back(static_cast<char>(kNewFalse));
    put_global(out, "collections", "OrderedDict");
    out += ")RtR";
  }
  out += "u.";
  return out;
}

}  // namespace vigil::nn::detail
