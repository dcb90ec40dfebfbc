// The model registry: immutable, content-addressed model files under <workspace>/registry/objects/, versions
// numbered per name (never reused), aliases that move between versions.

#include <fmt/format.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <random>

#include "store_impl.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/hash.h"
#include "vigil/core/strings.h"

namespace vigil::store {

namespace fs = std::filesystem;
using json = nlohmann::json;
using detail::now_ms;

namespace {

bool valid_name_char(char c, bool allow_dot) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || (allow_dot && c == '.');
}

void check_identifier(const std::string& s, const char* what, bool allow_dot) {
  bool ok = !s.empty() && s.size() <= 100 && s[0] != '.' && s[0] != '-';
  for (char c : s) ok = ok && valid_name_char(c, allow_dot);
  if (!ok) {
    throw InvalidArgument(
        fmt::format("expected a {} of letters, digits, '-', '_'{} (1..100 characters, not starting with '-' "
                    "or '.'), got '{}'",
                    what, allow_dot ? ", '.'" : "", s));
  }
}

std::string versions_text(const std::vector<int>& versions) {
  std::vector<std::string> parts;
  for (int v : versions) parts.push_back(std::to_string(v));
  return parts.empty() ? "none" : join(parts, ", ");
}

}  // namespace

void check_model_name(const std::string& name) {
  check_identifier(name, "model name", true);
}

void check_alias_name(const std::string& alias) {
  check_identifier(alias, "alias", false);
  VIGIL_CHECK(!parse_int(alias).has_value(), "expected an alias that is not a number, got '{}'", alias);
}

ModelRef parse_model_ref(const std::string& spec) {
  ModelRef ref;
  const auto at = spec.rfind('@');
  const auto slash = spec.find_last_of("/:");
  if (at != std::string::npos) {
    ref.name = spec.substr(0, at);
    ref.alias = spec.substr(at + 1);
    VIGIL_CHECK(!ref.alias.empty(), "expected an alias after '@' in '{}'", spec);
  } else if (slash != std::string::npos) {
    ref.name = spec.substr(0, slash);
    const auto v = parse_int(spec.substr(slash + 1));
    VIGIL_CHECK(v && *v >= 1, "expected NAME/VERSION with a version number >= 1, got '{}'", spec);
    ref.version = static_cast<int>(*v);
  } else {
    ref.name = spec;
  }
  check_model_name(ref.name);
  if (ref.alias == "latest") ref.alias.clear();  // version 0 + no alias = latest
  return ref;
}

CodeVersion detect_code_version(const fs::path& dir) {
  CodeVersion v;
  auto run = [&](const std::string& args) {
    std::string quoted = "'";
    for (char c : to_utf8(dir)) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    quoted += "'";
    const std::string cmd = fmt::format("git -C {} {} 2>/dev/null", quoted, args);
    std::string out;
    if (FILE* p = popen(cmd.c_str(), "r")) {
      char buf[4096];
      size_t n;
      while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
      if (pclose(p) != 0) return std::string();
    }
    return out;
  };
  v.commit = std::string(trim(run("rev-parse HEAD")));
  if (!v.commit.empty()) v.dirty = !trim(run("status --porcelain --untracked-files=no")).empty();
  return v;
}

// ---- registry
// -----------------------------------------------------------------------------------------------

ModelVersion Store::Impl::read_version(detail::Statement& s) {
  ModelVersion v;
  v.name = s.text_at(0);
  v.version = static_cast<int>(s.int_at(1));
  v.created_ms = s.int_at(2);
  v.file = to_utf8(registry_dir / s.text_at(3));
  v.sha256 = s.text_at(4);
  v.size = s.int_at(5);
  v.run_id = s.text_at(6);
  v.dataset_id = s.text_at(7);
  v.arch = s.text_at(8);
  v.task = s.text_at(9);
  v.description = s.text_at(10);
  try {
    const json metrics = json::parse(s.text_at(11));
    for (const auto& [k, val] : metrics.items())
      v.metrics[k] = val.is_number() ? val.get<double>() : std::nan("");
  } catch (const json::exception& e) {
    throw DataError(
        fmt::format("{}: model {}/{} has malformed metrics: {}", db->name(), v.name, v.version, e.what()));
  }
  v.info_json = s.text_at(12);
  v.source = s.text_at(13);
  return v;
}

std::vector<std::string> Store::Impl::aliases_of(const std::string& name, int version) {
  auto s = db->prepare("SELECT alias FROM model_aliases WHERE name = ? AND version = ? ORDER BY alias");
  s.bind_all({name, static_cast<int64_t>(version)});
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.text_at(0));
  return out;
}

ModelVersion Store::Impl::get_version_locked(const std::string& name, int version) {
  auto s = db->prepare(
      fmt::format("SELECT {} FROM model_versions WHERE name = ? AND version = ?", detail::kVersionColumns));
  s.bind_all({name, static_cast<int64_t>(version)});
  if (s.step()) {
    auto v = read_version(s);
    v.aliases = aliases_of(name, version);
    return v;
  }
  auto names = db->prepare("SELECT name FROM registered_models");
  std::vector<std::string> all;
  while (names.step()) all.push_back(names.text_at(0));
  if (std::find(all.begin(), all.end(), name) == all.end()) {
    const auto close = closest_match(name, all);
    throw NotFound(
        fmt::format("no registered model '{}'{}", name,
                    close ? fmt::format("; did you mean '{}'?", *close)
                          : fmt::format(" (registered: {})", all.empty() ? "none" : join(all, ", "))));
  }
  std::vector<int> versions;
  auto vs = db->prepare("SELECT version FROM model_versions WHERE name = ? ORDER BY version");
  vs.bind(1, name);
  while (vs.step()) versions.push_back(static_cast<int>(vs.int_at(0)));
  throw NotFound(
      fmt::format("model '{}' has no version {} (versions: {})", name, version, versions_text(versions)));
}

ModelVersion Store::register_model_file(const NewModelVersion& nv, const fs::path& model_file) {
  check_model_name(nv.name);
  std::error_code ec;
  if (!fs::is_regular_file(model_file, ec))
    throw NotFound(fmt::format("model file {} does not exist", to_utf8(model_file)));
  Impl& m = *impl_;
  const std::string sha = hash_file(model_file);
  const auto size = static_cast<int64_t>(fs::file_size(model_file));
  // Content-addressed: the object's name is its hash, so it can be put in place before the transaction
  // (a retried or failed transaction leaves at worst an unreferenced object) and versions with the same
  // weights share it.
  const fs::path objects = m.registry_dir / "objects";
  ensure_dir(objects);
  const fs::path object = objects / (sha + ".ckpt");
  if (!fs::exists(object, ec)) {
    const fs::path tmp = objects / fmt::format(".incoming-{}", detail::new_run_id());
    fs::copy_file(model_file, tmp, ec);
    if (ec)
      throw IoError(fmt::format("cannot copy {} into the registry: {}", to_utf8(model_file), ec.message()));
    if (hash_file(tmp) != sha) {
      fs::remove(tmp, ec);
      throw IoError(fmt::format("{} changed while it was being registered", to_utf8(model_file)));
    }
    ::chmod(tmp.c_str(), 0444);
    fs::rename(tmp, object, ec);
    if (ec) throw IoError(fmt::format("cannot move the model into {}: {}", to_utf8(object), ec.message()));
  }
  json metrics = json::object();
  for (const auto& [k, v] : nv.metrics) metrics[k] = v;
  int version = 0;
  std::lock_guard lock(m.mutex);
  m.db->write([&] {
    const int64_t now = now_ms();
    const bool created =
        m.db->prepare(
                "INSERT INTO registered_models(name, created_ms, updated_ms) VALUES(?, ?, ?) "
                "ON CONFLICT DO NOTHING")
            .bind_all({nv.name, now, now})
            .run() > 0;
    if (created)
      m.record_registry_event(
          "registered_model.created", nv.name, 0, "",
          json{{"name", nv.name}, {"tags", json::object()}, {"description", nullptr}}.dump(), now);
    m.db->prepare(
            "UPDATE registered_models SET last_version = last_version + 1, updated_ms = ? WHERE name = ?")
        .bind_all({now, nv.name})
        .run();
    auto s = m.db->prepare("SELECT last_version FROM registered_models WHERE name = ?");
    s.bind(1, nv.name);
    s.step();
    version = static_cast<int>(s.int_at(0));
    m.db->prepare(
            fmt::format("INSERT INTO model_versions({}) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        detail::kVersionColumns))
        .bind_all({nv.name, static_cast<int64_t>(version), now, "objects/" + sha + ".ckpt", sha, size,
                   nv.run_id, nv.dataset_id, nv.arch, nv.task, nv.description, metrics.dump(), nv.info_json,
                   nv.source})
        .run();
    m.record_registry_event("model_version.created", nv.name, version, "",
                            json{{"name", nv.name},
                                 {"version", std::to_string(version)},
                                 {"source", nv.source},
                                 {"run_id", nv.run_id},
                                 {"dataset_id", nv.dataset_id},
                                 {"sha256", sha},
                                 {"metrics", metrics},
                                 {"tags", json::object()},
                                 {"description", nv.description}}
                                .dump(),
                            now);
  });
  return m.get_version_locked(nv.name, version);
}

ModelVersion Store::resolve_model(const std::string& spec) {
  const ModelRef ref = parse_model_ref(spec);
  std::lock_guard lock(impl_->mutex);
  auto& db = *impl_->db;
  if (!ref.alias.empty()) {
    auto s = db.prepare("SELECT version FROM model_aliases WHERE name = ? AND alias = ?");
    s.bind_all({ref.name, ref.alias});
    if (s.step()) return impl_->get_version_locked(ref.name, static_cast<int>(s.int_at(0)));
    auto exists = db.prepare("SELECT 1 FROM registered_models WHERE name = ?");
    exists.bind(1, ref.name);
    if (!exists.step()) impl_->get_version_locked(ref.name, 1);  // throws NotFound with suggestions
    std::vector<std::string> aliases;
    auto a = db.prepare("SELECT alias, version FROM model_aliases WHERE name = ? ORDER BY alias");
    a.bind(1, ref.name);
    while (a.step()) aliases.push_back(fmt::format("{} -> {}", a.text_at(0), a.int_at(1)));
    throw NotFound(fmt::format(
        "model '{}' has no alias '{}' (aliases: {}; set one with `vigil models alias {} "
        "VERSION {}`)",
        ref.name, ref.alias, aliases.empty() ? "none" : join(aliases, ", "), ref.name, ref.alias));
  }
  int version = ref.version;
  if (version == 0) {
    auto s = db.prepare("SELECT max(version) FROM model_versions WHERE name = ?");
    s.bind(1, ref.name);
    if (s.step() && !s.is_null(0)) version = static_cast<int>(s.int_at(0));
  }
  return impl_->get_version_locked(ref.name, version);
}

ModelVersion Store::get_model_version(const std::string& name, int version) {
  std::lock_guard lock(impl_->mutex);
  return impl_->get_version_locked(name, version);
}

std::vector<RegisteredModel> Store::list_models() {
  std::lock_guard lock(impl_->mutex);
  auto& db = *impl_->db;
  std::vector<RegisteredModel> out;
  auto s = db.prepare(
      "SELECT m.name, m.created_ms, m.updated_ms, (SELECT max(version) FROM model_versions v WHERE v.name = "
      "m.name), (SELECT count(*) FROM model_versions v WHERE v.name = m.name) FROM registered_models m ORDER "
      "BY "
      "m.name");
  while (s.step()) {
    RegisteredModel r{s.text_at(0),
                      s.int_at(1),
                      s.int_at(2),
                      static_cast<int>(s.int_at(3)),
                      static_cast<int>(s.int_at(4)),
                      {}};
    out.push_back(std::move(r));
  }
  for (auto& r : out) {
    auto a = db.prepare("SELECT alias, version FROM model_aliases WHERE name = ?");
    a.bind(1, r.name);
    while (a.step()) r.aliases[a.text_at(0)] = static_cast<int>(a.int_at(1));
  }
  return out;
}

std::vector<ModelVersion> Store::list_versions(const std::string& name) {
  std::lock_guard lock(impl_->mutex);
  auto& m = *impl_;
  std::vector<ModelVersion> out;
  {
    auto s = m.db->prepare(fmt::format("SELECT {} FROM model_versions WHERE name = ? ORDER BY version",
                                       detail::kVersionColumns));
    s.bind(1, name);
    while (s.step()) out.push_back(m.read_version(s));
  }
  if (out.empty()) {
    auto s = m.db->prepare("SELECT 1 FROM registered_models WHERE name = ?");
    s.bind(1, name);
    if (!s.step()) m.get_version_locked(name, 1);  // throws NotFound with suggestions
  }
  for (auto& v : out) v.aliases = m.aliases_of(v.name, v.version);
  return out;
}

int Store::set_alias(const std::string& name, const std::string& alias, int version) {
  check_alias_name(alias);
  VIGIL_CHECK(alias != "latest", "'latest' always means the newest version; it cannot be set");
  std::lock_guard lock(impl_->mutex);
  auto& m = *impl_;
  int previous = 0;
  m.db->write([&] {
    m.get_version_locked(name, version);  // NotFound names the versions that exist
    auto s = m.db->prepare("SELECT version FROM model_aliases WHERE name = ? AND alias = ?");
    s.bind_all({name, alias});
    previous = s.step() ? static_cast<int>(s.int_at(0)) : 0;
    const int64_t now = now_ms();
    m.db->prepare(
            "INSERT INTO model_aliases(name, alias, version, updated_ms) VALUES(?, ?, ?, ?) "
            "ON CONFLICT(name, alias) DO UPDATE SET version = excluded.version, updated_ms = "
            "excluded.updated_ms")
        .bind_all({name, alias, static_cast<int64_t>(version), now})
        .run();
    m.db->prepare("UPDATE registered_models SET updated_ms = ? WHERE name = ?").bind_all({now, name}).run();
    if (previous != version) {  // setting an alias to where it already points changes nothing
      json payload = {{"name", name}, {"alias", alias}, {"version", std::to_string(version)}};
      if (previous != 0) payload["previous_version"] = std::to_string(previous);
      m.record_registry_event("model_version_alias.created", name, version, alias, payload.dump(), now);
    }
  });
  return previous;
}

void Store::delete_alias(const std::string& name, const std::string& alias) {
  std::lock_guard lock(impl_->mutex);
  auto& m = *impl_;
  m.db->write([&] {
    auto del = m.db->prepare("DELETE FROM model_aliases WHERE name = ? AND alias = ?");
    if (del.bind_all({name, alias}).run() == 0)
      throw NotFound(fmt::format("model '{}' has no alias '{}'", name, alias));
    m.record_registry_event("model_version_alias.deleted", name, 0, alias,
                            json{{"name", name}, {"alias", alias}}.dump(), now_ms());
  });
}

void Store::delete_model_version(const std::string& name, int version, bool force) {
  std::lock_guard lock(impl_->mutex);
  auto& m = *impl_;
  std::string file, sha;
  m.db->write([&] {
    const auto v = m.get_version_locked(name, version);
    if (!v.aliases.empty() && !force) {
      throw InvalidArgument(fmt::format(
          "{}/{} is aliased as {}; move the alias first (vigil models alias) or delete with --force", name,
          version, join(v.aliases, ", ")));
    }
    m.db->prepare("DELETE FROM model_aliases WHERE name = ? AND version = ?")
        .bind_all({name, static_cast<int64_t>(version)})
        .run();
    m.db->prepare("DELETE FROM model_versions WHERE name = ? AND version = ?")
        .bind_all({name, static_cast<int64_t>(version)})
        .run();
    const int64_t now = now_ms();
    for (const auto& alias : v.aliases)  // --force took them away with the version
      m.record_registry_event("model_version_alias.deleted", name, 0, alias,
                              json{{"name", name}, {"alias", alias}}.dump(), now);
    m.record_registry_event("model_version.deleted", name, version, "",
                            json{{"name", name}, {"version", std::to_string(version)}}.dump(), now);
    auto others = m.db->prepare("SELECT count(*) FROM model_versions WHERE sha256 = ?");
    others.bind(1, v.sha256);
    others.step();
    if (others.int_at(0) == 0) file = v.file;
  });
  if (!file.empty()) {
    std::error_code ec;
    fs::remove(file, ec);  // the row is gone; a file left behind is only disk space
  }
}

void Store::Impl::record_registry_event(const std::string& event, const std::string& name, int version,
                                        const std::string& alias, const std::string& payload_json,
                                        int64_t now) {
  db->prepare(
        "INSERT INTO registry_events(time_ms, event, name, version, alias, payload_json) VALUES(?, ?, ?, ?, "
        "?, "
        "?)")
      .bind_all({now, event, name, static_cast<int64_t>(version), alias, payload_json})
      .run();
}

std::vector<RegistryEvent> Store::registry_events(int64_t after_id, int64_t since_ms, int limit) {
  std::lock_guard lock(impl_->mutex);
  auto s = impl_->db->prepare(
      "SELECT id, time_ms, event, name, version, alias, payload_json, claimed_by FROM registry_events WHERE "
      "id > ? AND time_ms >= ? ORDER BY id LIMIT ?");
  s.bind_all({after_id, since_ms, static_cast<int64_t>(limit)});
  std::vector<RegistryEvent> out;
  while (s.step()) {
    out.push_back({s.int_at(0), s.int_at(1), s.text_at(2), s.text_at(3), static_cast<int>(s.int_at(4)),
                   s.text_at(5), s.text_at(6), s.text_at(7)});
  }
  return out;
}

bool Store::claim_registry_event(int64_t id, const std::string& claimant) {
  std::lock_guard lock(impl_->mutex);
  int64_t changed = 0;
  impl_->db->write([&] {
    changed = impl_->db
                  ->prepare(
                      "UPDATE registry_events SET claimed_by = ?, claimed_ms = ? WHERE id = ? AND "
                      "claimed_by = ''")
                  .bind_all({claimant, now_ms(), id})
                  .run();
  });
  return changed == 1;
}

void Store::verify_model_version(const ModelVersion& v) {
  std::error_code ec;
  if (!fs::is_regular_file(v.file, ec))
    throw DataError(
        fmt::format("{}/{}: its model file {} is missing from the registry", v.name, v.version, v.file));
  const std::string sha = hash_file(v.file);
  if (sha != v.sha256) {
    throw DataError(fmt::format("{}/{}: model file {} was changed (sha256 {} , registered {})", v.name,
                                v.version, v.file, sha, v.sha256));
  }
}

std::optional<ModelVersion> Store::find_model_version_by_hash(const std::string& name,
                                                              const std::string& sha256) {
  std::lock_guard lock(impl_->mutex);
  auto s = impl_->db->prepare(
      "SELECT version FROM model_versions WHERE name = ? AND sha256 = ? ORDER BY version LIMIT 1");
  s.bind_all({name, sha256});
  if (!s.step()) return std::nullopt;
  return impl_->get_version_locked(name, static_cast<int>(s.int_at(0)));
}

}  // namespace vigil::store
