// Route table: the workspace's datasets, and bulk upload into them (the accident seed's "upload new labelled
// images"): many files in one multipart request, or one .zip / .tar.* archive, in any format vigil reads,
// validated and stored as a new content-addressed version (data/store.h). Archives are hostile input
// (data/archive.h); so are the uploaded file names, which become paths only through safe_relative_path.
// One version's statistics, validation report and sample images feed the web UI's Datasets page; an image is
// looked up among the version's samples and read by its content hash, so a request's file name never becomes
// a filesystem path.

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <mutex>

#include "router.h"
#include "server_impl.h"
#include "upload_parts.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"
#include "vigil/data/archive.h"
#include "vigil/data/stats.h"
#include "vigil/data/store.h"
#include "vigil/data/task.h"
#include "vigil/data/validate.h"
#include "vigil/serve/event_query.h"

namespace vigil::serve {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Req = httplib::Request;
using Res = httplib::Response;

constexpr const char* kDatasetPath = R"(/v1/datasets/([A-Za-z0-9._-]{1,128}))";
constexpr const char* kVersionPath = R"(/versions/([0-9a-f]{6,64}))";
constexpr size_t kMaxIssuesShown = 50;

json version_json(const data::DatasetVersion& v) {
  return {{"name", v.name},           {"id", v.id},
          {"short_id", v.short_id()}, {"task", data::task_name(v.task)},
          {"format", v.format},       {"images", v.images},
          {"boxes", v.boxes},         {"classes", v.classes},
          {"files", v.files},         {"created", v.created},
          {"source", v.source}};
}

void list_datasets(Server::Impl& impl, const Req&, Res& res) {
  const data::DatasetStore store(workspace_of(impl));
  json out = json::array();
  for (const auto& v : store.list()) out.push_back(version_json(v));
  send_json(res, {{"datasets", out}});
}

void get_dataset(Server::Impl& impl, const Req& req, Res& res) {
  const data::DatasetStore store(workspace_of(impl));
  const std::string name = req.matches[1];
  json versions = json::array();
  for (const auto& v : store.list())
    if (v.name == name) versions.push_back(version_json(v));
  if (versions.empty()) store.resolve(name);  // NotFound listing the names there are
  send_json(res, {{"name", name}, {"versions", versions}});
}

/// POST /v1/datasets/{name}/upload: multipart file parts (their file names are paths inside the dataset, e.g.
/// "with_mask/001.jpg" or "labels/a.txt"), or a single archive part. Query: format (default auto), classes
/// (comma-separated, fixes the order).
void upload_dataset(Server::Impl& impl, const Req& req, Res& res) {
  if (!req.is_multipart_form_data() || req.files.empty())
    throw_http(400, "bad_request",
               "expected multipart/form-data with the dataset's files (file names as paths such as "
               "with_mask/1.jpg) or one .zip / .tar.gz archive");
  const Workspace ws = workspace_of(impl);
  const ScratchDir scratch(ws.root() / "tmp", "upload");
  const fs::path source = scratch.path() / "files";
  UploadPartsOptions parts;  // every part with a file name; names are paths inside the dataset
  if (req.files.size() == 1 && data::is_archive(req.files.begin()->second.filename)) {
    // Only the kind is taken from the client's name (".zip", ".tar.gz"): the reader goes by it.
    const std::string name = to_lower(fs::path(req.files.begin()->second.filename).filename().string());
    parts.one_file = scratch.path() / ("upload" + name.substr(name.find('.')));
  }
  const size_t written = write_upload_parts(req, source, parts);
  data::IngestOptions o;
  o.name = req.matches[1];
  o.format = req.has_param("format") ? req.get_param_value("format") : "auto";
  if (req.has_param("classes")) o.classes = split(req.get_param_value("classes"), ',');
  std::lock_guard lock(dataset_ingest_mutex());
  data::DatasetStore store(ws);
  const data::IngestResult r =
      store.ingest(parts.one_file.value_or(source), o);  // DataError (422) naming the file or entry
  json issues = json::array();
  for (size_t i = 0; i < r.issues.size() && i < kMaxIssuesShown; ++i)
    issues.push_back({{"kind", r.issues[i].kind},
                      {"severity", data::severity_name(r.issues[i].severity)},
                      {"file", r.issues[i].file},
                      {"message", r.issues[i].message}});
  json body = version_json(r.version);
  body["unchanged"] = r.unchanged;
  body["uploaded_files"] = written;
  body["files_stored"] = r.files_stored;
  body["issues"] = std::move(issues);
  body["issues_total"] = r.issues.size();
  send_json(res, body, r.unchanged ? 200 : 201);
}

/// {name}@{id prefix} from the path; NotFound (listing the names) when that name has no such version.
data::DatasetVersion version_of(const data::DatasetStore& store, const Req& req) {
  return store.resolve(std::string(req.matches[1]) + "@" + std::string(req.matches[2]));
}

/// `count` samples spread evenly over the list: class-folder datasets are stored class by class, so the
/// spread shows every class rather than the first one's first images.
json sample_views(const data::Dataset& ds, size_t count) {
  json out = json::array();
  const size_t n = ds.samples.size();
  const size_t take = std::min(count, n);
  for (size_t k = 0; k < take; ++k) {
    const data::Sample& s = ds.samples[k * n / take];
    json j = {{"file", s.file},   {"width", s.width},        {"height", s.height},
              {"split", s.split}, {"boxes", s.boxes.size()}, {"type", s.check.type}};
    const bool labelled = s.label >= 0 && s.label < static_cast<int>(ds.classes.size());
    j["label"] = labelled ? json(ds.classes[s.label]) : json(nullptr);
    if (!s.check.problem_kind.empty()) j["problem"] = s.check.problem_kind + ": " + s.check.problem;
    out.push_back(std::move(j));
  }
  return out;
}

/// A stored split's sizes and, per side, the count of each class (images for classifiers, boxes for
/// detectors), in the order of the class names: whether validation sees every class, and how much of it.
json split_view(const data::Dataset& ds, const data::SplitFiles& f) {
  std::map<std::string, const data::Sample*> by_file;
  for (const auto& s : ds.samples) by_file[s.file] = &s;
  const int n = static_cast<int>(ds.classes.size());
  const auto per_class = [&](const std::vector<std::string>& files) {
    std::vector<int64_t> counts(n, 0);
    for (const auto& file : files) {
      const auto it = by_file.find(file);
      if (it == by_file.end()) continue;
      const data::Sample& s = *it->second;
      if (ds.task == data::Task::kClassification && s.label >= 0 && s.label < n) ++counts[s.label];
      for (const auto& b : s.boxes)
        if (b.class_id >= 0 && b.class_id < n) ++counts[b.class_id];
    }
    return counts;
  };
  return {
      {"train", f.train.size()},
      {"val", f.val.size()},
      {"test", f.test.size()},
      {"classes", {{"train", per_class(f.train)}, {"val", per_class(f.val)}, {"test", per_class(f.test)}}}};
}

/// GET /v1/datasets/{name}/versions/{id}: the version, its class names, statistics (data/stats.h), the
/// validation report with default options (data/validate.h; the first 50 issues), the stored splits' sizes
/// and class counts per side, and `?samples=N` (default 12, at most 100) sample files for the image route
/// below.
void get_version(Server::Impl& impl, const Req& req, Res& res) {
  const data::DatasetStore store(workspace_of(impl));
  const data::DatasetVersion v = version_of(store, req);
  const data::Dataset ds = store.load(v);
  const ParamLookup get = [&req](const char* name) -> std::optional<std::string> {
    if (!req.has_param(name)) return std::nullopt;
    return req.get_param_value(name);
  };
  const auto samples = static_cast<size_t>(int_query(get, "samples", 12, 0, 100));
  json body = version_json(v);
  body["class_names"] = ds.classes;
  body["stats"] = data::compute_stats(ds).to_json();
  json report = data::validate(ds, data::ValidateOptions{}).to_json();
  json& issues = report["issues"];
  report["issues_total"] = issues.size();
  if (issues.size() > kMaxIssuesShown) issues.erase(issues.begin() + kMaxIssuesShown, issues.end());
  body["validation"] = std::move(report);
  body["splits"] = json::object();
  for (const auto& name : store.split_names(v))
    body["splits"][name] = split_view(ds, store.load_split(v, name));
  body["samples"] = sample_views(ds, samples);
  send_json(res, body);
}

const char* image_content_type(const std::string& type) {
  static const std::map<std::string, const char*> kTypes = {{"jpeg", "image/jpeg"}, {"png", "image/png"},
                                                            {"bmp", "image/bmp"},   {"gif", "image/gif"},
                                                            {"webp", "image/webp"}, {"tiff", "image/tiff"}};
  const auto it = kTypes.find(type);
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

/// GET /v1/datasets/{name}/versions/{id}/image?file=PATH: the bytes of one of the version's images. PATH must
/// be a sample's relative file name (no "..", absolute path or backslash: 400) and is only compared with the
/// manifest's names; the bytes come from the object store by the sample's hash (unknown name: 404).
void get_version_image(Server::Impl& impl, const Req& req, Res& res) {
  if (!req.has_param("file") || req.get_param_value("file").empty())
    throw_http(400, "bad_request",
               "file: expected an image's path inside the dataset, e.g. ?file=cats/1.jpg");
  const std::string file = req.get_param_value("file");
  std::string wanted;
  try {
    wanted = data::safe_relative_path(file).generic_string();
  } catch (const DataError& e) {
    throw_http(400, "bad_request", fmt::format("file: {}", e.what()));
  }
  const data::DatasetStore store(workspace_of(impl));
  const data::DatasetVersion v = version_of(store, req);
  const data::Dataset ds = store.load(v);
  const auto it = std::find_if(ds.samples.begin(), ds.samples.end(),
                               [&](const data::Sample& s) { return s.file == wanted; });
  if (it == ds.samples.end() || it->hash.empty())
    throw_http(404, "not_found", fmt::format("file: no image '{}' in {}@{}", file, v.name, v.short_id()));
  // Under a full version id these bytes never change (content-addressed); a prefix could come to mean another
  // version.
  if (std::string(req.matches[2]).size() == 64)
    res.set_header("Cache-Control", "private, max-age=86400, immutable");
  res.set_content(read_file(store.object_path(it->hash)), image_content_type(it->check.type));
}

}  // namespace

Workspace workspace_of(const Server::Impl& impl) {
  if (impl.options.workspace.empty())
    throw_http(503, "unavailable", "this server has no workspace, so it keeps no datasets");
  return Workspace(impl.options.workspace);
}

std::mutex& dataset_ingest_mutex() {
  static std::mutex m;
  return m;
}

const std::vector<Route>& dataset_routes() {
  static const std::string one = kDatasetPath;
  static const std::string version = one + kVersionPath;
  // clang-format off
  static const std::vector<Route> kRoutes = {
      {"GET",  "/v1/datasets",     "/v1/datasets",                            list_datasets},
      {"GET",  one,                "/v1/datasets/{name}",                     get_dataset},
      {"POST", one + "/upload",    "/v1/datasets/{name}/upload",              upload_dataset},
      {"GET",  version,            "/v1/datasets/{name}/versions/{id}",       get_version},
      {"GET",  version + "/image", "/v1/datasets/{name}/versions/{id}/image", get_version_image},
  };
  // clang-format on
  return kRoutes;
}

}  // namespace vigil::serve
