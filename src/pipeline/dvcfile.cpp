// Loading dvc.yaml: schema checks with file:line messages, ${...} interpolation from params.yaml and `vars`
// (dvc/parsing: the default params file is loaded first, then vars in order; a value that is exactly one
// ${...} keeps its type), and the stage fields DVC 3 accepts (dvc/schema.py STAGE_DEFINITION).

#include "vigil/pipeline/dvcfile.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"

namespace vigil::pipeline {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kStageFields = {"cmd",     "wdir",  "deps",   "params",         "outs",
                                               "metrics", "plots", "frozen", "always_changed", "meta",
                                               "desc",    "vars"};
const std::vector<std::string> kTopFields = {"stages", "vars",      "params",  "metrics",
                                             "plots",  "artifacts", "datasets"};
const std::vector<std::string> kOutFlags = {"cache", "persist", "remote", "push",
                                            "desc",  "type",    "labels", "meta"};
const std::vector<std::string> kPlotFlags = {"template", "x", "y", "x_label", "y_label", "title", "header"};

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

struct Where {
  const YamlDoc& doc;
  std::string file;  // display name of dvc.yaml
  std::string pointer;
  std::string stage;
  std::string at(const std::string& sub = "") const {
    const int line = doc.line_of(pointer + sub);
    const std::string loc = line > 0 ? fmt::format("{}:{}", file, line) : file;
    return stage.empty() ? loc : fmt::format("{}: stage '{}'", loc, stage);
  }
};

// ---- interpolation --------------------------------------------------------------------------------------

const Json* lookup(const Json& ctx, const std::string& key) {
  const Json* cur = &ctx;
  std::string token;
  auto step = [&](const std::string& t) -> bool {
    if (t.empty()) return true;
    if (cur->is_object() && cur->contains(t)) {
      cur = &(*cur)[t];
      return true;
    }
    auto idx = parse_int(t);
    if (cur->is_array() && idx && *idx >= 0 && static_cast<size_t>(*idx) < cur->size()) {
      cur = &(*cur)[static_cast<size_t>(*idx)];
      return true;
    }
    return false;
  };
  for (char c : key) {
    if (c == '.' || c == '[' || c == ']') {
      if (!step(token)) return nullptr;
      token.clear();
    } else {
      token += c;
    }
  }
  return step(token) ? cur : nullptr;
}

std::string to_interpolated_string(const Json& v, const std::string& expr, const std::string& where) {
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_array() || v.is_object()) {
    throw InvalidArgument(
        fmt::format("{}: cannot interpolate ${{{}}} into a string: it is a {}, expected a number, "
                    "string or boolean",
                    where, expr, v.is_array() ? "list" : "mapping"));
  }
  return python_str(v);
}

Json interpolate_string(const std::string& s, const Json& ctx, const std::string& where) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const auto open = s.find("${", i);
    if (open == std::string::npos) {
      out += s.substr(i);
      break;
    }
    if (open > 0 && s[open - 1] == '\\') {  // \${ is a literal ${
      out += s.substr(i, open - 1 - i) + "${";
      i = open + 2;
      continue;
    }
    const auto close = s.find('}', open);
    if (close == std::string::npos)
      throw InvalidArgument(fmt::format("{}: unclosed '${{' in '{}'", where, s));
    const std::string expr(trim(s.substr(open + 2, close - open - 2)));
    const Json* v = lookup(ctx, expr);
    if (!v) {
      throw InvalidArgument(fmt::format(
          "{}: cannot interpolate ${{{}}}: '{}' is not defined in params.yaml or vars", where, expr, expr));
    }
    if (open == 0 && close == s.size() - 1) return *v;  // the whole value: keep its type
    out += s.substr(i, open - i) + to_interpolated_string(*v, expr, where);
    i = close + 1;
  }
  return Json(out);
}

Json interpolate(const Json& v, const Json& ctx, const std::string& where) {
  if (v.is_string()) return interpolate_string(v.get<std::string>(), ctx, where);
  if (v.is_array()) {
    Json out = Json::array();
    for (const auto& e : v) out.push_back(interpolate(e, ctx, where));
    return out;
  }
  if (v.is_object()) {
    Json out = Json::object();
    for (const auto& [k, e] : v.items()) {
      const Json key = interpolate_string(k, ctx, where);
      out[key.is_string() ? key.get<std::string>() : python_str(key)] = interpolate(e, ctx, where);
    }
    return out;
  }
  return v;
}

void merge_vars(Json& into, const Json& from, const std::string& where, const std::string& prefix = "") {
  for (const auto& [k, v] : from.items()) {
    if (!into.contains(k)) {
      into[k] = v;
    } else if (into[k].is_object() && v.is_object()) {
      merge_vars(into[k], v, where, prefix + k + ".");
    } else if (into[k] != v) {
      throw InvalidArgument(fmt::format("{}: vars: cannot redefine '{}{}'", where, prefix, k));
    }
  }
}

void add_vars(Json& ctx, const Json& vars, const fs::path& base, const std::string& where) {
  if (vars.is_null()) return;
  if (!vars.is_array())
    throw InvalidArgument(fmt::format("{}: expected 'vars' to be a list, got {}", where, vars.dump()));
  for (const auto& entry : vars) {
    if (entry.is_object()) {
      merge_vars(ctx, entry, where);
      continue;
    }
    if (!entry.is_string())
      throw InvalidArgument(fmt::format("{}: expected vars entries to be files or mappings", where));
    std::string file = entry.get<std::string>();
    std::vector<std::string> keys;
    if (auto colon = file.find(':'); colon != std::string::npos) {
      keys = split(file.substr(colon + 1), ',');
      file = file.substr(0, colon);
    }
    const Json data = load_data_file(base / file);
    if (keys.empty()) {
      merge_vars(ctx, data, where);
      continue;
    }
    for (const auto& key : keys) {
      const Json* v = lookup(data, std::string(trim(key)));
      if (!v) throw NotFound(fmt::format("{}: vars: '{}' not found in {}", where, key, file));
      merge_vars(ctx, Json{{std::string(trim(key)), *v}}, where);
    }
  }
}

// ---- stage fields ---------------------------------------------------------------------------------------

std::vector<std::string> string_list(const Json& v, const Where& w, const std::string& field) {
  std::vector<std::string> out;
  if (v.is_null()) return out;
  if (!v.is_array())
    throw InvalidArgument(
        fmt::format("{}: expected '{}' to be a list, got {}", w.at("/" + field), field, v.dump()));
  for (const auto& e : v) {
    if (!e.is_string() || e.get<std::string>().empty()) {
      throw InvalidArgument(
          fmt::format("{}: expected '{}' entries to be paths, got {}", w.at("/" + field), field, e.dump()));
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

bool flag(const Json& v, const Where& w, const std::string& field) {
  if (v.is_null()) return false;
  if (!v.is_boolean())
    throw InvalidArgument(
        fmt::format("{}: expected '{}' to be true or false, got {}", w.at("/" + field), field, v.dump()));
  return v.get<bool>();
}

void parse_outs(const Json& v, const std::string& field, const Where& w, StageDef& s) {
  if (v.is_null()) return;
  if (!v.is_array())
    throw InvalidArgument(
        fmt::format("{}: expected '{}' to be a list, got {}", w.at("/" + field), field, v.dump()));
  for (const auto& e : v) {
    OutDef out;
    out.metric = field == "metrics";
    out.plot = field == "plots";
    if (e.is_string()) {
      out.path = e.get<std::string>();
    } else if (e.is_object() && e.size() == 1) {
      out.path = e.begin().key();
      const Json& flags = e.begin().value();
      if (!flags.is_null() && !flags.is_object()) {
        throw InvalidArgument(
            fmt::format("{}: expected the flags of '{}' to be a mapping", w.at("/" + field), out.path));
      }
      const Json no_flags = Json::object();
      for (const auto& [k, fv] : (flags.is_object() ? flags : no_flags).items()) {
        if (!contains(kOutFlags, k) && !(out.plot && contains(kPlotFlags, k))) {
          throw InvalidArgument(fmt::format("{}: unknown flag '{}' for '{}' (valid: {})", w.at("/" + field),
                                            k, out.path, join(out.plot ? kPlotFlags : kOutFlags, ", ")));
        }
        if (k == "cache") out.cache = flag(fv, w, field);
        if (k == "persist") out.persist = flag(fv, w, field);
      }
    } else {
      throw InvalidArgument(fmt::format("{}: expected '{}' entries to be paths or 'path: {{flags}}', got {}",
                                        w.at("/" + field), field, e.dump()));
    }
    if (out.path.empty())
      throw InvalidArgument(fmt::format("{}: empty path in '{}'", w.at("/" + field), field));
    s.outs.push_back(out);
  }
}

// dvc/dependency/__init__.py _merge_params: strings are keys of params.yaml; {file: [keys]} adds keys of a
// file; {file: null} or {file: []} tracks the whole file, which then absorbs any keys listed for it.
void parse_params(const Json& v, const Where& w, StageDef& s) {
  if (v.is_null()) return;
  if (!v.is_array())
    throw InvalidArgument(
        fmt::format("{}: expected 'params' to be a list, got {}", w.at("/params"), v.dump()));
  std::vector<std::pair<std::string, std::set<std::string>>> files;
  std::set<std::string> whole;
  auto slot = [&files](const std::string& f) -> std::set<std::string>& {
    for (auto& [name, keys] : files)
      if (name == f) return keys;
    files.emplace_back(f, std::set<std::string>{});
    return files.back().second;
  };
  for (const auto& e : v) {
    if (e.is_string()) {
      slot("params.yaml").insert(e.get<std::string>());
    } else if (e.is_object()) {
      for (const auto& [file, keys] : e.items()) {
        auto& set = slot(file);
        if (keys.is_null() || (keys.is_array() && keys.empty()))
          whole.insert(file);
        else if (!keys.is_array())
          throw InvalidArgument(fmt::format("{}: expected a list of params for '{}', got {}", w.at("/params"),
                                            file, keys.dump()));
        else
          for (const auto& k : keys) set.insert(k.is_string() ? k.get<std::string>() : python_str(k));
      }
    } else {
      throw InvalidArgument(fmt::format("{}: expected 'params' entries to be keys or 'file: [keys]', got {}",
                                        w.at("/params"), e.dump()));
    }
  }
  for (const auto& [file, keys] : files) {
    ParamsDef p;
    p.file = file;
    p.whole_file = whole.count(file) > 0;
    if (!p.whole_file) p.keys.assign(keys.begin(), keys.end());  // std::set sorts as Python's sorted() does
    s.params.push_back(p);
  }
}

void parse_cmd(const Json& v, const Where& w, StageDef& s) {
  s.cmd = v;
  if (v.is_string()) {
    for (const auto& line : split(v.get<std::string>(), '\n'))
      if (!line.empty()) s.commands.push_back(line);  // _enforce_cmd_list: str.splitlines()
  } else if (v.is_array()) {
    for (const auto& e : v) {
      if (!e.is_string())
        throw InvalidArgument(
            fmt::format("{}: expected 'cmd' entries to be strings, got {}", w.at("/cmd"), e.dump()));
      s.commands.push_back(e.get<std::string>());
    }
  }
  if (s.commands.empty()) {
    throw InvalidArgument(fmt::format(
        "{}: expected a non-empty 'cmd' (a string or a list of strings), got {}", w.at("/cmd"), v.dump()));
  }
}

// A stage name as a JSON pointer token (YamlDoc line lookups).
std::string pointer_token(const std::string& name) {
  std::string out;
  for (char c : name) out += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
  return out;
}

StageDef parse_stage(const std::string& name, const Json& raw, const Json& base_ctx, const Pipeline& p,
                     const Where& w) {
  if (!raw.is_object())
    throw InvalidArgument(fmt::format("{}: expected a mapping of stage fields, got {}", w.at(), raw.dump()));
  for (const auto& [k, _] : raw.items()) {
    if (k == "foreach" || k == "matrix" || k == "do") {
      throw InvalidArgument(
          fmt::format("{}: '{}' stages are not supported by vigil; write the stages out", w.at("/" + k), k));
    }
    if (!contains(kStageFields, k)) {
      throw InvalidArgument(
          fmt::format("{}: unknown field '{}' (valid: {})", w.at("/" + k), k, join(kStageFields, ", ")));
    }
  }
  if (!raw.contains("cmd")) throw InvalidArgument(fmt::format("{}: missing required field 'cmd'", w.at()));
  Json ctx = base_ctx;
  std::string wdir = raw.contains("wdir") && raw["wdir"].is_string() ? raw["wdir"].get<std::string>() : ".";
  if (raw.contains("vars")) add_vars(ctx, raw["vars"], p.dir / wdir, w.at("/vars"));
  Json st = raw;
  st.erase("vars");
  st = interpolate(st, ctx, w.at());
  StageDef s;
  s.name = name;
  s.line = w.doc.line_of(w.pointer);
  if (st.contains("wdir")) {
    if (!st["wdir"].is_string())
      throw InvalidArgument(fmt::format("{}: expected 'wdir' to be a path", w.at("/wdir")));
    s.wdir = st["wdir"].get<std::string>();
  }
  s.wdir_path = (p.dir / s.wdir).lexically_normal();
  parse_cmd(st["cmd"], w, s);
  s.deps = string_list(st.value("deps", Json()), w, "deps");
  parse_params(st.value("params", Json()), w, s);
  for (const char* field : {"outs", "metrics", "plots"}) parse_outs(st.value(field, Json()), field, w, s);
  s.frozen = flag(st.value("frozen", Json()), w, "frozen");
  s.always_changed = flag(st.value("always_changed", Json()), w, "always_changed");
  if (st.contains("desc") && st["desc"].is_string()) s.desc = st["desc"].get<std::string>();
  return s;
}

fs::path find_root(const fs::path& dir) {
  for (fs::path d = dir; !d.empty(); d = d.parent_path()) {
    std::error_code ec;
    if (fs::is_directory(d / ".dvc", ec)) return d;
    if (d == d.parent_path()) break;
  }
  return dir;
}

std::vector<std::string> top_list(const Json& v, const std::string& field, const Where& w) {
  std::vector<std::string> out;
  if (v.is_null()) return out;
  if (!v.is_array())
    throw InvalidArgument(fmt::format("{}: expected '{}' to be a list", w.at("/" + field), field));
  for (const auto& e : v) {
    if (e.is_string())
      out.push_back(e.get<std::string>());
    else if (e.is_object() && e.size() == 1)
      out.push_back(e.begin().key());
  }
  return out;
}

}  // namespace

fs::path StageDef::resolve(const std::string& rel) const {
  fs::path p = (wdir_path / rel).lexically_normal();
  if (!p.has_filename() && p.has_parent_path() && p != p.root_path())
    p = p.parent_path();  // "data/" -> "data"
  return p;
}

const StageDef* Pipeline::find(const std::string& name) const {
  for (const auto& s : stages)
    if (s.name == name) return &s;
  return nullptr;
}

std::vector<std::string> Pipeline::stage_names() const {
  std::vector<std::string> out;
  for (const auto& s : stages) out.push_back(s.name);
  return out;
}

const StageDef& Pipeline::stage(const std::string& name) const {
  if (const auto* s = find(name)) return *s;
  const auto names = stage_names();
  auto hint = closest_match(name, names);
  throw NotFound(fmt::format("{}: no stage named '{}'{} (stages: {})", display(file), name,
                             hint ? fmt::format("; did you mean '{}'?", *hint) : "", join(names, ", ")));
}

std::string Pipeline::display(const fs::path& path) const {
  const auto s = to_utf8(path.lexically_relative(dir));
  return s.empty() ? to_utf8(path) : s;
}

Pipeline load_pipeline(const fs::path& dvc_yaml) {
  Pipeline p;
  p.file = fs::absolute(dvc_yaml).lexically_normal();
  p.dir = p.file.parent_path();
  p.root = find_root(p.dir);
  p.lock_path = p.dir / (p.file.stem().string() == "dvc" ? "dvc.lock" : p.file.stem().string() + ".lock");
  std::error_code ec;
  if (!fs::exists(p.file, ec)) throw NotFound(fmt::format("pipeline file not found: {}", to_utf8(dvc_yaml)));
  const std::string name = to_utf8(dvc_yaml);
  const YamlDoc doc = load_yaml_file(p.file);
  const Json& root = doc.value;
  Where top{doc, name, "", ""};
  if (root.is_null()) return p;  // an empty file: no stages
  if (!root.is_object())
    throw InvalidArgument(fmt::format("{}: expected a mapping with 'stages', got {}", name, root.dump()));
  for (const auto& [k, _] : root.items()) {
    if (!contains(kTopFields, k)) {
      throw InvalidArgument(fmt::format("{}: unknown top-level field '{}' (valid: {})", top.at("/" + k), k,
                                        join(kTopFields, ", ")));
    }
  }
  Json ctx = Json::object();
  if (fs::is_regular_file(p.dir / "params.yaml", ec)) ctx = load_data_file(p.dir / "params.yaml");
  if (!ctx.is_object()) ctx = Json::object();
  if (root.contains("vars")) add_vars(ctx, root["vars"], p.dir, top.at("/vars"));
  p.metrics = top_list(root.value("metrics", Json()), "metrics", top);
  p.params_files = top_list(root.value("params", Json()), "params", top);
  const Json& stages = root.contains("stages") ? root["stages"] : Json();
  if (!stages.is_null() && !stages.is_object())
    throw InvalidArgument(fmt::format("{}: expected 'stages' to be a mapping", top.at("/stages")));
  if (stages.is_object()) {
    for (const auto& [sname, body] : stages.items()) {
      Where w{doc, name, "/stages/" + pointer_token(sname), sname};
      p.stages.push_back(parse_stage(sname, body, ctx, p, w));
    }
  }
  return p;
}

}  // namespace vigil::pipeline
