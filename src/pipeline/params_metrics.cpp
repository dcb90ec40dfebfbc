// params diff / metrics show / metrics diff (dvc/repo/params, dvc/repo/metrics, dvc/utils/diff.py
// _diff_dicts, dvc/compare.py diff_table / metrics_table / _format_field, dvc/commands/metrics.py
// DEFAULT_PRECISION = 5).

#include "vigil/pipeline/params_metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"
#include "vigil/pipeline/process.h"
#include "vigil/pipeline/project.h"

namespace vigil::pipeline {

namespace fs = std::filesystem;

namespace {

using Flat = std::map<std::string, Json>;

Flat to_map(const Json& v) {
  Flat out;
  for (auto& [k, val] : flatten(v)) out[k] = val;
  return out;
}

bool in_git(const fs::path& dir) {
  auto [code, out] = run_capture({"git", "rev-parse", "--is-inside-work-tree"}, dir);
  return code == 0 && trim(out) == "true";
}

// The file's bytes at `rev`, or nullopt when git cannot give them (no such revision, file not committed).
std::optional<std::string> git_show(const fs::path& dir, const std::string& rev, const fs::path& abs) {
  const std::string rel = to_utf8(abs.lexically_relative(dir));
  auto [code, out] = run_capture({"git", "show", rev + ":./" + rel}, dir);
  if (code != 0) return std::nullopt;
  return out;
}

std::optional<Flat> read_flat(const fs::path& abs, const std::string& shown,
                              std::vector<std::string>& notes) {
  std::error_code ec;
  if (!fs::exists(abs, ec)) return std::nullopt;
  try {
    return to_map(load_data_file(abs));
  } catch (const Error& e) {
    notes.push_back(fmt::format("{}: cannot be read: {}", shown, e.what()));
    return std::nullopt;
  }
}

std::optional<Flat> read_rev(const fs::path& dir, const std::string& rev, const fs::path& abs,
                             const std::string& shown, std::vector<std::string>& notes) {
  auto text = git_show(dir, rev, abs);
  if (!text) return std::nullopt;
  try {
    return to_map(parse_data_text(*text, shown));
  } catch (const Error& e) {
    notes.push_back(fmt::format("{} at {}: cannot be parsed: {}", shown, rev, e.what()));
    return std::nullopt;
  }
}

void add_rows(DiffResult& result, const std::string& path, const Flat& old_side, const Flat& new_side,
              bool all) {
  std::set<std::string> keys;
  for (const auto& [k, _] : old_side) keys.insert(k);
  for (const auto& [k, _] : new_side) keys.insert(k);
  for (const auto& k : keys) {
    DiffRow row{path, k, std::nullopt, std::nullopt};
    if (auto it = old_side.find(k); it != old_side.end()) row.old_value = it->second;
    if (auto it = new_side.find(k); it != new_side.end()) row.new_value = it->second;
    const bool same = row.old_value && row.new_value && python_equal(*row.old_value, *row.new_value);
    if (all || !same) result.rows.push_back(row);
  }
}

// One params file of the pipeline: what stages track of it, and what dvc.lock recorded.
struct ParamsSource {
  fs::path abs;
  std::string shown;
  bool whole = false;
  std::set<std::string> keys;
  Flat locked;
};

bool tracked(const ParamsSource& src, const std::string& key) {
  if (src.whole) return true;
  for (const auto& k : src.keys)
    if (key == k || starts_with(key, k + ".")) return true;
  return false;
}

std::vector<ParamsSource> params_sources(const Project& project) {
  const Pipeline& p = project.pipeline();
  std::vector<ParamsSource> out;
  auto slot = [&](const fs::path& abs) -> ParamsSource& {
    for (auto& s : out)
      if (s.abs == abs) return s;
    out.push_back({abs, p.display(abs), false, {}, {}});
    return out.back();
  };
  std::error_code ec;
  if (fs::is_regular_file(p.dir / "params.yaml", ec)) slot(p.dir / "params.yaml");
  for (const auto& f : p.params_files) slot((p.dir / f).lexically_normal());
  for (const auto& stage : p.stages) {
    const LockStage* lock = project.lock().find(stage.name);
    for (const auto& prm : stage.params) {
      ParamsSource& src = slot(stage.resolve(prm.file));
      src.whole = src.whole || prm.whole_file;
      src.keys.insert(prm.keys.begin(), prm.keys.end());
      const std::string def = project.def_path(stage, prm.file);
      if (lock && lock->params.contains(def)) {
        for (const auto& [k, v] : lock->params[def].items())
          for (auto& [fk, fv] : flatten(Json{{k, v}})) src.locked[fk] = fv;
      }
    }
  }
  return out;
}

Flat only_tracked(const Flat& values, const ParamsSource& src) {
  Flat out;
  for (const auto& [k, v] : values)
    if (tracked(src, k)) out[k] = v;
  return out;
}

Flat only_keys_of(const Flat& values, const Flat& reference) {
  Flat out;
  for (const auto& [k, v] : values)
    if (reference.count(k)) out[k] = v;
  return out;
}

std::string cell(const std::optional<Json>& v, bool metrics) {
  if (!v || v->is_null()) return "-";
  return metrics ? format_metric_value(*v) : python_str(*v);
}

std::optional<Json> change_of(const DiffRow& row) {
  auto number = [](const std::optional<Json>& v) { return v && v->is_number(); };
  if (!number(row.old_value) || !number(row.new_value)) return std::nullopt;
  if (row.old_value->is_number_float() || row.new_value->is_number_float())
    return Json(row.new_value->get<double>() - row.old_value->get<double>());
  return Json(row.new_value->get<long long>() - row.old_value->get<long long>());
}

}  // namespace

void DiffOptions::validate() const {
  VIGIL_CHECK(!file.empty(), "expected a pipeline file (--file), got an empty path");
  VIGIL_CHECK(b_rev.empty() || !a_rev.empty(), "expected A_REV before B_REV, got only B_REV");
}

std::vector<std::pair<std::string, Json>> flatten(const Json& value) {
  std::vector<std::pair<std::string, Json>> out;
  if (!value.is_object()) {
    if (!value.is_null()) out.emplace_back("", value);
    return out;
  }
  for (const auto& [k, v] : value.items()) {
    if (v.is_object()) {
      for (auto& [sub, leaf] : flatten(v)) out.emplace_back(k + "." + sub, leaf);  // empty mappings vanish
    } else {
      out.emplace_back(k, v);
    }
  }
  return out;
}

DiffResult params_diff(const DiffOptions& options) {
  options.validate();
  Project project(options.file);
  const fs::path dir = project.pipeline().dir;
  const bool git = in_git(dir);
  DiffResult result;
  const std::string a_rev = options.a_rev.empty() ? "HEAD" : options.a_rev;
  result.old_label = git ? a_rev : "dvc.lock";
  result.new_label = options.b_rev.empty() ? "workspace" : options.b_rev;
  if (!git && (!options.a_rev.empty() || !options.b_rev.empty()))
    throw InvalidArgument(
        fmt::format("{}: expected a git repository to compare revisions, got none", to_utf8(dir)));
  for (const auto& src : params_sources(project)) {
    std::optional<Flat> new_side = options.b_rev.empty()
                                       ? read_flat(src.abs, src.shown, result.notes)
                                       : read_rev(dir, options.b_rev, src.abs, src.shown, result.notes);
    Flat now = new_side.value_or(Flat{});
    std::optional<Flat> old_side =
        git ? read_rev(dir, a_rev, src.abs, src.shown, result.notes) : std::nullopt;
    Flat before;
    if (old_side) {
      before = *old_side;
    } else if (!options.a_rev.empty()) {
      before = {};  // an explicit revision without the file: everything is new
    } else {
      // Not committed (or no git): the values dvc.lock recorded, compared on the keys it recorded.
      before = src.locked;
      now = only_keys_of(now, src.locked);
      if (git)
        result.notes.push_back(
            fmt::format("{} is not committed at {}: compared with dvc.lock", src.shown, a_rev));
    }
    if (options.deps_only) {
      before = only_tracked(before, src);
      now = only_tracked(now, src);
    }
    add_rows(result, src.shown, before, now, options.all);
  }
  return result;
}

std::vector<MetricsFile> metrics_show(const fs::path& file) {
  const Pipeline p = load_pipeline(file);
  std::vector<fs::path> paths;
  for (const auto& s : p.stages)
    for (const auto& o : s.outs)
      if (o.metric) paths.push_back(s.resolve(o.path));
  for (const auto& m : p.metrics) paths.push_back((p.dir / m).lexically_normal());
  std::vector<MetricsFile> out;
  for (const auto& abs : paths) {
    if (std::any_of(out.begin(), out.end(), [&](const auto& m) { return m.path == p.display(abs); }))
      continue;
    MetricsFile m;
    m.path = p.display(abs);
    try {
      m.data = load_data_file(abs);
      m.values = flatten(m.data);
    } catch (const Error& e) {
      m.error = e.what();
    }
    out.push_back(std::move(m));
  }
  return out;
}

DiffResult metrics_diff(const DiffOptions& options) {
  options.validate();
  const Pipeline p = load_pipeline(options.file);
  const bool git = in_git(p.dir);
  DiffResult result;
  result.old_label = options.a_rev.empty() ? "HEAD" : options.a_rev;
  result.new_label = options.b_rev.empty() ? "workspace" : options.b_rev;
  if (!git) {
    if (!options.a_rev.empty())
      throw InvalidArgument(
          fmt::format("{}: expected a git repository to compare revisions, got none", to_utf8(p.dir)));
    result.notes.push_back("not a git repository: there are no committed metrics to compare with");
  }
  for (const auto& m : metrics_show(options.file)) {
    const fs::path abs = (p.dir / m.path).lexically_normal();
    Flat now;
    if (options.b_rev.empty()) {
      for (const auto& [k, v] : m.values) now[k] = v;
      if (!m.error.empty()) result.notes.push_back(fmt::format("{}: {}", m.path, m.error));
    } else {
      now = read_rev(p.dir, options.b_rev, abs, m.path, result.notes).value_or(Flat{});
    }
    Flat before =
        git ? read_rev(p.dir, result.old_label, abs, m.path, result.notes).value_or(Flat{}) : Flat{};
    add_rows(result, m.path, before, now, options.all);
  }
  return result;
}

std::string format_metric_value(const Json& value) {
  if (!value.is_number_float()) return python_str(value);
  const double v = value.get<double>();
  if (!std::isfinite(v)) return python_float_repr(v);
  return python_float_repr(std::strtod(fmt::format("{:.5f}", v).c_str(), nullptr));  // round(v, 5)
}

std::string format_table(const std::vector<std::string>& headers,
                         const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(headers.size(), 0);
  auto len = [](const std::string& s) { return decode_code_points(s).size(); };
  for (size_t c = 0; c < headers.size(); ++c) width[c] = len(headers[c]);
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size() && c < width.size(); ++c) width[c] = std::max(width[c], len(r[c]));
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (size_t c = 0; c < width.size(); ++c) {
      const std::string v = c < cells.size() ? cells[c] : "";
      s += (c ? "  " : "") + v + std::string(width[c] - len(v), ' ');
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };
  std::string out = line(headers);
  for (const auto& r : rows) out += line(r);
  return out;
}

std::string format_diff(const DiffResult& diff, bool metrics) {
  if (diff.rows.empty()) return "";
  std::vector<std::string> headers = {"Path", metrics ? "Metric" : "Param", diff.old_label, diff.new_label};
  if (metrics) headers.push_back("Change");
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : diff.rows) {
    std::vector<std::string> row = {r.path, r.key, cell(r.old_value, metrics), cell(r.new_value, metrics)};
    if (metrics) row.push_back(cell(change_of(r), true));
    rows.push_back(row);
  }
  return format_table(headers, rows);
}

std::string format_metrics(const std::vector<MetricsFile>& files) {
  std::set<std::string> keys;
  for (const auto& f : files)
    for (const auto& [k, _] : f.values) keys.insert(k);
  std::vector<std::string> headers = {"Path"};
  headers.insert(headers.end(), keys.begin(), keys.end());
  std::vector<std::vector<std::string>> rows;
  for (const auto& f : files) {
    if (!f.error.empty()) continue;
    std::vector<std::string> row = {f.path};
    for (const auto& k : keys) {
      auto it = std::find_if(f.values.begin(), f.values.end(), [&](const auto& kv) { return kv.first == k; });
      row.push_back(it == f.values.end() ? "-" : format_metric_value(it->second));
    }
    rows.push_back(row);
  }
  return rows.empty() ? "" : format_table(headers, rows);
}

Json diff_to_json(const DiffResult& diff, bool metrics) {
  Json out = Json::object();
  for (const auto& r : diff.rows) {
    Json entry = Json::object();
    entry["old"] = r.old_value.value_or(Json());
    entry["new"] = r.new_value.value_or(Json());
    if (metrics) {
      if (auto c = change_of(r)) entry["diff"] = *c;
    }
    out[r.path][r.key] = entry;
  }
  return out;
}

Json metrics_to_json(const std::vector<MetricsFile>& files) {
  Json out = Json::object();
  for (const auto& f : files) out[f.path] = f.error.empty() ? f.data : Json{{"error", f.error}};
  return out;
}

}  // namespace vigil::pipeline
