// dvc.lock reading and writing (schema 2.0). The text comes from dump_yaml, which writes what ruamel writes,
// over the structure dvc/stage/serialize.py to_single_stage_lockfile builds.

#include "vigil/pipeline/lockfile.h"

#include <fmt/format.h>

#include <algorithm>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"

namespace vigil::pipeline {

namespace {

LockItem parse_item(const Json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("path") || !j["path"].is_string()) {
    throw InvalidArgument(fmt::format("{}: expected an entry with a 'path', got {}", where, j.dump()));
  }
  LockItem item;
  item.path = j["path"].get<std::string>();
  if (j.contains("hash")) {
    if (j["hash"] != "md5") {
      throw InvalidArgument(
          fmt::format("{}: '{}': expected hash md5, got {}", where, item.path, j["hash"].dump()));
    }
  } else {
    item.legacy = true;  // DVC 2 wrote no hash name: its md5 values are md5-dos2unix
  }
  if (j.contains("md5") && j["md5"].is_string()) item.md5 = j["md5"].get<std::string>();
  if (j.contains("size") && j["size"].is_number_integer()) item.size = j["size"].get<int64_t>();
  if (j.contains("nfiles") && j["nfiles"].is_number_integer()) item.nfiles = j["nfiles"].get<int64_t>();
  if (j.contains("isexec") && j["isexec"].is_boolean()) item.isexec = j["isexec"].get<bool>();
  return item;
}

std::vector<LockItem> parse_items(const Json& j, const std::string& where) {
  std::vector<LockItem> out;
  if (j.is_null()) return out;
  if (!j.is_array()) throw InvalidArgument(fmt::format("{}: expected a list, got {}", where, j.dump()));
  for (const auto& e : j) out.push_back(parse_item(e, where));
  return out;
}

LockStage parse_stage(const std::string& name, const Json& j, const std::string& file) {
  const std::string where = fmt::format("{}: stage '{}'", file, name);
  if (!j.is_object() || !j.contains("cmd")) {
    throw InvalidArgument(fmt::format("{}: expected a mapping with 'cmd', got {}", where, j.dump()));
  }
  LockStage s;
  s.cmd = j["cmd"];
  if (j.contains("deps")) s.deps = parse_items(j["deps"], where + " deps");
  if (j.contains("outs")) s.outs = parse_items(j["outs"], where + " outs");
  if (j.contains("params") && j["params"].is_object()) s.params = j["params"];
  return s;
}

Json item_json(const LockItem& item) {
  Json j = Json::object();
  j["path"] = item.path;
  if (!item.legacy) j["hash"] = "md5";
  j["md5"] = item.md5;
  if (item.size) j["size"] = *item.size;
  if (item.nfiles) j["nfiles"] = *item.nfiles;
  if (item.isexec) j["isexec"] = true;
  return j;
}

Json stage_json(const LockStage& s) {
  Json j = Json::object();
  j["cmd"] = s.cmd;
  auto items = [](const std::vector<LockItem>& v) {
    Json a = Json::array();
    for (const auto& i : v) a.push_back(item_json(i));
    return a;
  };
  if (!s.deps.empty()) j["deps"] = items(s.deps);
  if (!s.params.empty()) j["params"] = s.params;
  if (!s.outs.empty()) j["outs"] = items(s.outs);
  return j;
}

const LockItem* find_item(const std::vector<LockItem>& items, const std::string& path) {
  for (const auto& i : items)
    if (i.path == path) return &i;
  return nullptr;
}

}  // namespace

LockItem LockItem::from_hash(const std::string& path, const HashInfo& h) {
  LockItem item;
  item.path = path;
  item.md5 = h.md5;
  item.size = h.size;
  if (h.isdir) item.nfiles = h.nfiles.value_or(0);
  item.isexec = !h.isdir && h.isexec;
  return item;
}

const LockItem* LockStage::find_dep(const std::string& path) const {
  return find_item(deps, path);
}
const LockItem* LockStage::find_out(const std::string& path) const {
  return find_item(outs, path);
}
bool LockStage::operator==(const LockStage& other) const {
  return stage_json(*this) == stage_json(other);
}

const LockStage* Lockfile::find(const std::string& name) const {
  for (const auto& [n, s] : stages)
    if (n == name) return &s;
  return nullptr;
}

bool Lockfile::set(const std::string& name, LockStage stage) {
  for (auto& [n, s] : stages) {
    if (n != name) continue;
    const bool changed = !(s == stage);
    s = std::move(stage);
    return changed;
  }
  stages.emplace_back(name, std::move(stage));
  return true;
}

void Lockfile::retain(const std::vector<std::string>& names) {
  stages.erase(std::remove_if(stages.begin(), stages.end(),
                              [&](const auto& e) {
                                return std::find(names.begin(), names.end(), e.first) == names.end();
                              }),
               stages.end());
}

Lockfile parse_lockfile(std::string_view text, const std::string& name) {
  Lockfile lock;
  const YamlDoc doc = parse_yaml(text, name);
  const Json& root = doc.value;
  if (root.is_null()) return lock;
  if (!root.is_object())
    throw InvalidArgument(fmt::format("{}: expected a mapping, got {}", name, root.dump()));
  const Json* stages = &root;
  if (root.contains("schema")) {
    if (root["schema"] != "2.0") {
      throw InvalidArgument(fmt::format("{}:{}: expected schema '2.0', got {}", name, doc.line_of("/schema"),
                                        root["schema"].dump()));
    }
    stages = root.contains("stages") ? &root["stages"] : nullptr;
  }  // else: a DVC 1 lock, whose stages sit at the top; it is rewritten as 2.0 on the next write
  if (!stages || stages->is_null()) return lock;
  if (!stages->is_object()) throw InvalidArgument(fmt::format("{}: expected 'stages' to be a mapping", name));
  for (const auto& [stage_name, body] : stages->items())
    lock.stages.emplace_back(stage_name, parse_stage(stage_name, body, name));
  return lock;
}

Lockfile read_lockfile(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return {};
  return parse_lockfile(read_file(path), to_utf8(path.filename()));
}

std::string lockfile_text(const Lockfile& lock) {
  Json root = Json::object();
  root["schema"] = "2.0";
  Json stages = Json::object();
  for (const auto& [name, s] : lock.stages) stages[name] = stage_json(s);
  root["stages"] = stages;
  return dump_yaml(root);
}

void write_lockfile(const std::filesystem::path& path, const Lockfile& lock) {
  write_file_atomic(path, lockfile_text(lock));
}

}  // namespace vigil::pipeline
