#include "vigil/data/store.h"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <ctime>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "manifest_io.h"
#include "vigil/core/clock.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/hash.h"
#include "vigil/core/strings.h"
#include "vigil/core/thread_pool.h"
#include "vigil/data/archive.h"
#include "vigil/data/inspect.h"

namespace vigil::data {

using json = nlohmann::json;

namespace {

void check_name(const std::string& name) {
  static const std::regex kName("[A-Za-z0-9][A-Za-z0-9._-]*");
  VIGIL_CHECK(
      std::regex_match(name, kName),
      "expected a dataset name of letters, digits, '.', '_' or '-' (starting with a letter or digit), "
      "got '{}'",
      name);
}

/// Every file of the source as (path relative to `base`, absolute path), sorted.
std::vector<std::pair<std::string, fs::path>> source_files(const fs::path& source, const Dataset& ds,
                                                           fs::path* base) {
  std::vector<std::pair<std::string, fs::path>> out;
  if (fs::is_directory(source)) {
    *base = source;
    for (const auto& rel : list_files_recursive(source)) out.emplace_back(to_utf8(rel), source / rel);
  } else {
    // A single annotation file (COCO JSON): the file plus the images it references.
    *base = ds.root.empty() ? source.parent_path() : ds.root;
    out.emplace_back(to_utf8(fs::relative(source, *base)), source);
  }
  std::set<std::string> seen;
  for (const auto& [rel, abs] : out) seen.insert(rel);
  for (const auto& s : ds.samples) {
    auto abs = ds.root / fs::u8path(s.file);
    auto rel = to_utf8(fs::relative(abs, *base));
    if (seen.insert(rel).second) out.emplace_back(rel, abs);
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// Copies a file into the object store unless an object with that hash is there already.
bool store_object(const fs::path& src, const fs::path& dst) {
  std::error_code ec;
  if (fs::exists(dst, ec)) return false;
  ensure_dir(dst.parent_path());
  fs::path tmp = dst;
  tmp += ".tmp" + std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()));
  fs::copy_file(src, tmp, fs::copy_options::overwrite_existing, ec);
  if (ec) throw IoError(fmt::format("cannot copy {} into the store: {}", to_utf8(src), ec.message()));
  fs::rename(tmp, dst, ec);
  if (ec) throw IoError(fmt::format("cannot move {} into the store: {}", to_utf8(dst), ec.message()));
  return true;
}

json read_json(const fs::path& p) {
  const std::string text = read_file(p);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw DataError(fmt::format("{}: corrupt JSON ({})", to_utf8(p), e.what()));
  }
}

}  // namespace

DatasetStore::DatasetStore(Workspace ws) : ws_(std::move(ws)) {}

namespace {
fs::path object_in(const fs::path& objects_dir, const std::string& sha256) {
  VIGIL_ASSERT(sha256.size() > 2, "bad object hash '{}'", sha256);
  return objects_dir / sha256.substr(0, 2) / sha256.substr(2);
}
}  // namespace

fs::path DatasetStore::object_path(const std::string& sha256) const {
  return object_in(ws_.objects_dir(), sha256);
}

fs::path DatasetStore::version_dir(const std::string& id) const {
  return ws_.datasets_dir() / id;
}

ImageSource DatasetStore::image_source() const {
  // By value: the source outlives this store object (loaders and writers keep it).
  return [objects = ws_.objects_dir()](const Sample& s) { return object_in(objects, s.hash); };
}

IngestResult DatasetStore::ingest(const fs::path& source, const IngestOptions& options, Progress* progress) {
  check_name(options.name);
  VIGIL_CHECK(fs::exists(source), "expected an existing dataset folder, archive or file, got '{}'",
              to_utf8(source));
  ws_.ensure();
  if (!is_archive(source) || !fs::is_regular_file(source))
    return ingest_from(source, source, options, progress);
  // An archive is unpacked (as hostile input) into the workspace's scratch space, ingested from there, and
  // the unpacked copy removed: the store keeps the content, the version records the archive as its source.
  const ScratchDir scratch(ws_.root() / "tmp", "ingest");
  const ExtractResult unpacked = extract_archive(source, scratch.path(), options.archive_limits);
  return ingest_from(unpacked.root, source, options, progress);
}

IngestResult DatasetStore::ingest_from(const fs::path& source, const fs::path& recorded_source,
                                       const IngestOptions& options, Progress* progress) {
  register_builtin_formats();
  const std::string format = options.format == "auto" ? detect_format(source) : options.format;
  Dataset ds = read_dataset(source, format, ReadOptions{options.classes});
  if (ds.samples.empty()) {
    throw DataError(fmt::format("no usable samples in {} read as '{}' ({} problem(s) found while reading{})",
                                to_utf8(source), format, ds.issues.size(),
                                ds.issues.empty() ? "" : ": first: " + ds.issues.front().message));
  }

  fs::path base;
  auto files = source_files(fs::absolute(source), ds, &base);
  std::vector<std::string> hashes(files.size());
  std::atomic<size_t> stored{0};
  parallel_for(files.size(), options.threads, [&](size_t i) {
    hashes[i] = hash_file(files[i].second);
    if (store_object(files[i].second, object_path(hashes[i]))) ++stored;
    if (progress) progress->advance();
  });
  std::map<std::string, std::pair<std::string, int64_t>> by_path;  // absolute -> (hash, bytes)
  std::vector<std::pair<std::string, std::string>> manifest_files;
  for (size_t i = 0; i < files.size(); ++i) {
    std::error_code ec;
    by_path[to_utf8(fs::absolute(files[i].second).lexically_normal())] = {
        hashes[i], static_cast<int64_t>(fs::file_size(files[i].second, ec))};
    manifest_files.emplace_back(files[i].first, hashes[i]);
  }
  for (auto& s : ds.samples) {
    auto key = to_utf8(fs::absolute(ds.root / fs::u8path(s.file)).lexically_normal());
    auto it = by_path.find(key);
    VIGIL_ASSERT(it != by_path.end(), "sample {} was not hashed", s.file);
    s.hash = it->second.first;
    s.bytes = it->second.second;
  }

  InspectOptions inspect;
  inspect.threads = options.threads;
  inspect_images(ds, image_source(), inspect);

  const std::string manifest = manifest_text(ds, manifest_files);
  const std::string id = hash_bytes(manifest);
  const fs::path dir = version_dir(id);
  IngestResult result;
  result.files_stored = stored;
  result.issues = ds.issues;
  if (!fs::exists(dir / "manifest.json")) {
    write_file_atomic(dir / "info.json",
                      info_text(ds, format, to_utf8(fs::absolute(recorded_source)), utc_now()));
    write_file_atomic(dir / "manifest.json", manifest);
  }

  // Names index: append this version unless it is already the newest under this name.
  const fs::path index_path = ws_.datasets_dir() / "names" / (options.name + ".json");
  json index = fs::exists(index_path) ? read_json(index_path)
                                      : json{{"name", options.name}, {"versions", json::array()}};
  auto& versions = index["versions"];
  result.unchanged = !versions.empty() && versions.back().value("id", "") == id;
  if (!result.unchanged) {
    versions.push_back({{"id", id},
                        {"ingested", utc_now()},
                        {"source", to_utf8(fs::absolute(recorded_source))},
                        {"format", format}});
    write_file_atomic(index_path, index.dump(2) + "\n");
  }
  result.version = resolve(options.name + "@" + id);
  return result;
}

std::vector<DatasetVersion> DatasetStore::list() const {
  std::vector<DatasetVersion> out;
  const fs::path names = ws_.datasets_dir() / "names";
  std::error_code ec;
  if (!fs::is_directory(names, ec)) return out;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(names)) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    json index = read_json(f);
    for (const auto& v : index["versions"]) {
      DatasetVersion dv = read_version_summary(version_dir(v.at("id").get<std::string>()));
      dv.name = index.value("name", f.stem().string());
      dv.source = v.value("source", dv.source);
      out.push_back(std::move(dv));
    }
  }
  return out;
}

DatasetVersion DatasetStore::resolve(const std::string& ref) const {
  VIGIL_CHECK(!ref.empty(), "expected a dataset name, name@id or id, got an empty string");
  std::string name = ref, id_prefix;
  if (auto at = ref.find('@'); at != std::string::npos) {
    name = ref.substr(0, at);
    id_prefix = ref.substr(at + 1);
  }
  auto all = list();
  std::vector<DatasetVersion> matches;
  for (const auto& v : all) {
    bool by_name = v.name == name && (id_prefix.empty() || starts_with(v.id, id_prefix));
    if (by_name) matches.push_back(v);
  }
  if (matches.empty() && id_prefix.empty() && name.size() >= 6) {
    std::set<std::string> ids;
    for (const auto& v : all) {
      if (starts_with(v.id, name) && ids.insert(v.id).second) matches.push_back(v);
    }
    if (ids.size() > 1) throw InvalidArgument(fmt::format("dataset id prefix '{}' is ambiguous", name));
  }
  if (matches.empty()) {
    std::set<std::string> names;
    for (const auto& v : all) names.insert(v.name);
    throw NotFound(fmt::format("no dataset version '{}' in {} (known datasets: {})", ref,
                               to_utf8(ws_.datasets_dir()),
                               names.empty() ? "none; ingest one with `vigil data ingest`"
                                             : join({names.begin(), names.end()}, ", ")));
  }
  return matches.back();  // newest
}

Dataset DatasetStore::load(const DatasetVersion& version) const {
  return read_manifest(version_dir(version.id));
}

void DatasetStore::save_split(const DatasetVersion& v, const std::string& split_name, const SplitFiles& files,
                              const std::string& summary_json, const std::string& config_yaml) const {
  check_name(split_name);
  const fs::path dir = version_dir(v.id) / "splits" / split_name;
  auto lines = [](const std::vector<std::string>& xs) {
    std::string s;
    for (const auto& x : xs) s += x + "\n";
    return s;
  };
  write_file_atomic(dir / "train.txt", lines(files.train));
  write_file_atomic(dir / "val.txt", lines(files.val));
  write_file_atomic(dir / "test.txt", lines(files.test));
  write_file_atomic(dir / "summary.json", summary_json);
  write_file_atomic(dir / "config.yaml", config_yaml);
}

std::vector<std::string> DatasetStore::split_names(const DatasetVersion& v) const {
  std::vector<std::string> out;
  std::error_code ec;
  const fs::path dir = version_dir(v.id) / "splits";
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_directory()) out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

SplitFiles DatasetStore::load_split(const DatasetVersion& v, const std::string& split_name) const {
  const fs::path dir = version_dir(v.id) / "splits" / split_name;
  if (!fs::is_directory(dir)) {
    auto names = split_names(v);
    throw NotFound(fmt::format("dataset {} has no split '{}' (splits: {}); make one with `vigil data split`",
                               v.name, split_name, names.empty() ? "none" : join(names, ", ")));
  }
  auto read_lines = [&](const char* f) {
    std::vector<std::string> out;
    for (auto& l : split(read_file(dir / f), '\n')) {
      if (!l.empty()) out.push_back(l);
    }
    return out;
  };
  return SplitFiles{read_lines("train.txt"), read_lines("val.txt"), read_lines("test.txt")};
}

}  // namespace vigil::data
