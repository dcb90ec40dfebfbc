// Stage status and lock snapshots, following dvc/stage/__init__.py (changed_deps, changed_outs, status),
// dvc/output.py (workspace_status, update_legacy_hash_name), dvc/dependency/param.py (workspace_status,
// get_hash, MissingParamsError) and dvc/stage/serialize.py (_serialize_params_values).

#include "vigil/pipeline/project.h"

#include <fmt/format.h>

#include <algorithm>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"

namespace vigil::pipeline {

namespace fs = std::filesystem;

namespace {

bool path_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// dpath.get(config, "a.b.0", separator="."): nested lookup, numeric segments index lists.
const Json* find_param(const Json& config, const std::string& key) {
  const Json* cur = &config;
  for (const auto& part : split(key, '.')) {
    if (cur->is_object() && cur->contains(part)) {
      cur = &(*cur)[part];
      continue;
    }
    auto idx = parse_int(part);
    if (cur->is_array() && idx && *idx >= 0 && static_cast<size_t>(*idx) < cur->size()) {
      cur = &(*cur)[static_cast<size_t>(*idx)];
      continue;
    }
    return nullptr;
  }
  return cur;
}

// The recorded values of one params file; with `keys` empty the whole file (read_param_file without keys).
Json recorded_values(const Json& config, const std::vector<std::string>& keys,
                     std::vector<std::string>* missing) {
  Json out = Json::object();
  if (keys.empty()) {
    if (!config.is_object()) return out;
    std::vector<std::string> top;
    for (const auto& [k, _] : config.items()) top.push_back(k);
    std::sort(top.begin(), top.end());  // sorted at the top level only, as DVC does
    for (const auto& k : top) out[k] = config[k];
    return out;
  }
  for (const auto& k : keys) {
    if (const Json* v = find_param(config, k)) {
      out[k] = *v;
    } else if (missing) {
      missing->push_back(k);
    }
  }
  return out;
}

}  // namespace

bool StageStatus::changed() const {
  if (!in_lock || cmd_changed || !outs.empty()) return true;
  if (frozen) return false;
  return always_changed || !deps.empty() || !params.empty();
}

Project::Project(const fs::path& dvc_yaml)
    : pipeline_(load_pipeline(dvc_yaml)),
      graph_(pipeline_),
      ignore_(DvcIgnore::load(pipeline_.root)),
      lock_(read_lockfile(pipeline_.lock_path)) {}

std::string Project::def_path(const StageDef& stage, const std::string& written) const {
  const fs::path abs = stage.resolve(written);
  if (fs::path(written).is_absolute() || !path_isin_or_eq(abs, pipeline_.root)) return written;
  return to_utf8(abs.lexically_relative(stage.wdir_path));
}

std::vector<EntryStatus> Project::entries_status(const StageDef& stage, const std::vector<std::string>& paths,
                                                 const LockStage* lock, bool outs) {
  std::vector<EntryStatus> out;
  for (const auto& written : paths) {
    const fs::path abs = stage.resolve(written);
    const std::string shown = pipeline_.display(abs);
    if (!path_exists(abs)) {
      out.push_back({shown, "deleted"});
      continue;
    }
    const std::string def = def_path(stage, written);
    const LockItem* item = !lock ? nullptr : outs ? lock->find_out(def) : lock->find_dep(def);
    // Output.changed_checksum: an entry never recorded compares an empty hash with the real one.
    if (!item || item->md5 != hashes_.hash(abs, ignore_, item->kind()).md5)
      out.push_back({shown, "modified"});
  }
  return out;
}

std::vector<ParamStatus> Project::params_status(const StageDef& stage, const LockStage* lock) const {
  std::vector<ParamStatus> out;
  for (const auto& p : stage.params) {
    const std::string def = def_path(stage, p.file);
    const fs::path abs = stage.resolve(p.file);
    if (!path_exists(abs)) {
      out.push_back({def, "", "deleted"});
      continue;
    }
    if (!lock || !lock->params.contains(def)) {
      out.push_back({def, "", "new"});
      continue;
    }
    const Json actual = recorded_values(load_data_file(abs), p.keys, nullptr);
    Json info = Json::object();
    for (const auto& [k, v] : lock->params[def].items())
      if (p.whole_file || std::find(p.keys.begin(), p.keys.end(), k) != p.keys.end()) info[k] = v;
    std::vector<std::string> keys = p.keys;
    if (p.whole_file) {  // top-level keys of the file, then those only in the lock
      for (const auto& [k, _] : actual.items()) keys.push_back(k);
      for (const auto& [k, _] : info.items())
        if (!actual.contains(k)) keys.push_back(k);
    }
    for (const auto& k : keys) {
      if (!actual.contains(k)) {
        out.push_back({def, k, "deleted"});
      } else if (!info.contains(k)) {
        out.push_back({def, k, "new"});
      } else if (!python_equal(actual[k], info[k])) {
        out.push_back({def, k, "modified"});
      }
    }
  }
  return out;
}

StageStatus Project::status(const StageDef& stage) {
  StageStatus st;
  st.stage = stage.name;
  st.frozen = stage.frozen;
  const LockStage* lock = lock_.find(stage.name);
  st.in_lock = lock != nullptr;
  st.cmd_changed = lock && lock->cmd != stage.cmd;
  st.always_changed =
      stage.always_changed || (stage.deps.empty() && stage.params.empty() && stage.outs.empty());
  if (!stage.frozen) {
    st.deps = entries_status(stage, stage.deps, lock, false);
    st.params = params_status(stage, lock);
  }
  std::vector<std::string> outs;
  for (const auto& o : stage.outs) outs.push_back(o.path);
  st.outs = entries_status(stage, outs, lock, true);
  return st;
}

Json Project::params_values(const StageDef& stage, const ParamsDef& p) const {
  const fs::path abs = stage.resolve(p.file);
  if (!path_exists(abs)) {
    throw NotFound(
        fmt::format("stage '{}': params file '{}' does not exist", stage.name, pipeline_.display(abs)));
  }
  std::vector<std::string> missing;
  Json values = recorded_values(load_data_file(abs), p.keys, &missing);
  if (!missing.empty()) {
    throw NotFound(fmt::format("stage '{}': parameters '{}' are missing from '{}'", stage.name,
                               join(missing, ", "), pipeline_.display(abs)));
  }
  return values;
}

LockItem Project::record_item(const StageDef& stage, const std::string& written, const LockItem* old,
                              bool is_out) {
  const fs::path abs = stage.resolve(written);
  const std::string def = def_path(stage, written);
  if (!path_exists(abs)) {
    throw NotFound(fmt::format("stage '{}': {} '{}' does not exist", stage.name,
                               is_out ? "output" : "dependency", pipeline_.display(abs)));
  }
  // update_legacy_hash_name: an entry DVC 2 wrote stays md5-dos2unix while its content is unchanged.
  if (old && old->legacy) {
    const HashInfo legacy = hashes_.hash(abs, ignore_, HashKind::kMd5Dos2Unix);
    if (legacy.md5 == old->md5) {
      LockItem item = LockItem::from_hash(def, legacy);
      item.legacy = true;
      return item;
    }
  }
  return LockItem::from_hash(def, hashes_.hash(abs, ignore_, HashKind::kMd5));
}

LockStage Project::snapshot(const StageDef& stage) {
  const LockStage* old = lock_.find(stage.name);
  LockStage s;
  s.cmd = stage.cmd;
  auto by_def = [&](std::vector<std::string> written) {
    std::sort(written.begin(), written.end(),
              [&](const auto& a, const auto& b) { return def_path(stage, a) < def_path(stage, b); });
    return written;
  };
  for (const auto& d : by_def(stage.deps))
    s.deps.push_back(record_item(stage, d, old ? old->find_dep(def_path(stage, d)) : nullptr, false));
  std::vector<std::string> outs;
  for (const auto& o : stage.outs) outs.push_back(o.path);
  for (const auto& o : by_def(outs))
    s.outs.push_back(record_item(stage, o, old ? old->find_out(def_path(stage, o)) : nullptr, true));
  // _serialize_params_values: files sorted by path, params.yaml moved to the front.
  std::vector<const ParamsDef*> params;
  for (const auto& p : stage.params) params.push_back(&p);
  std::sort(params.begin(), params.end(), [&](const auto* a, const auto* b) {
    const auto da = def_path(stage, a->file), db = def_path(stage, b->file);
    if ((da == "params.yaml") != (db == "params.yaml")) return da == "params.yaml";
    return da < db;
  });
  for (const auto* p : params) {
    Json values = params_values(stage, *p);
    std::vector<std::string> keys;
    for (const auto& [k, _] : values.items()) keys.push_back(k);
    std::sort(keys.begin(), keys.end());
    Json sorted = Json::object();
    for (const auto& k : keys) sorted[k] = values[k];
    s.params[def_path(stage, p->file)] = sorted;
  }
  return s;
}

void Project::check_inputs(const std::vector<std::string>& stages) const {
  for (const auto& name : stages) {
    const StageDef& stage = pipeline_.stage(name);
    for (const auto& d : stage.deps) {
      const fs::path abs = stage.resolve(d);
      if (path_exists(abs) || graph_.producer_of(abs)) continue;
      // A dep containing a stage's output (e.g. the folder it writes into) is satisfied once that stage runs.
      bool contains_out = false;
      for (const auto& s : pipeline_.stages)
        for (const auto& o : s.outs) contains_out = contains_out || path_isin_or_eq(s.resolve(o.path), abs);
      if (contains_out) continue;
      throw NotFound(fmt::format("{}:{}: stage '{}': dependency '{}' does not exist and no stage produces it",
                                 pipeline_.display(pipeline_.file), stage.line, stage.name,
                                 pipeline_.display(abs)));
    }
    for (const auto& p : stage.params) {
      const fs::path abs = stage.resolve(p.file);
      if (graph_.producer_of(abs)) continue;
      if (!path_exists(abs)) {
        throw NotFound(fmt::format("{}:{}: stage '{}': params file '{}' does not exist",
                                   pipeline_.display(pipeline_.file), stage.line, stage.name,
                                   pipeline_.display(abs)));
      }
      params_values(stage, p);  // throws naming the missing keys and the file
    }
  }
}

std::string format_status(const std::vector<StageStatus>& statuses) {
  // CmdDataStatus._show: "STATUS:" padded to 30 columns, then the path; tab indents.
  auto line = [](int indent, const std::string& status, const std::string& what) {
    std::string s = status + ":";
    s += std::string(s.size() < 30 ? 30 - s.size() : 1, ' ');
    return std::string(indent, '\t') + s + what + "\n";
  };
  std::string out;
  for (const auto& st : statuses) {
    if (!st.changed() && !st.always_changed) continue;
    std::string body;
    if (!st.deps.empty() || !st.params.empty()) {
      body += "\tchanged deps:\n";
      for (const auto& d : st.deps) body += line(2, d.status, d.path);
      std::string file;
      for (const auto& p : st.params) {
        if (p.key.empty()) {
          body += line(2, p.status, p.file);
          continue;
        }
        if (p.file != file) body += "\t\t" + p.file + ":\n";
        file = p.file;
        body += line(3, p.status, p.key);
      }
    }
    if (!st.outs.empty()) {
      body += "\tchanged outs:\n";
      for (const auto& o : st.outs) body += line(2, o.status, o.path);
    }
    if (st.always_changed) body += "\talways changed\n";
    if (st.cmd_changed) body += "\tchanged command\n";
    if (body.empty() && !st.in_lock) body = "\tnot in dvc.lock yet\n";
    if (!body.empty()) out += st.stage + ":\n" + body;
  }
  return out.empty() ? "Data and pipelines are up to date.\n" : out;
}

}  // namespace vigil::pipeline
