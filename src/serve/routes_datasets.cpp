// Route table: the workspace's datasets, and bulk upload into them (the accident seed's "upload new labelled
// images"): many files in one multipart request, or one .zip / .tar.* archive, in any format vigil reads,
// validated and stored as a new content-addressed version (data/store.h). Archives are hostile input
// (data/archive.h); so are the uploaded file names, which become paths only through safe_relative_path.

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <mutex>

#include "router.h"
#include "server_impl.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"
#include "vigil/data/archive.h"
#include "vigil/data/store.h"
#include "vigil/data/task.h"

namespace vigil::serve {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Req = httplib::Request;
using Res = httplib::Response;

constexpr const char* kDatasetPath = R"(/v1/datasets/([A-Za-z0-9._-]{1,128}))";
constexpr size_t kMaxIssuesShown = 50;

/// One ingest at a time per server: versions of one name are appended to one index file.
std::mutex& ingest_mutex() {
  static std::mutex m;
  return m;
}

Workspace workspace_of(const Server::Impl& impl) {
  if (impl.options.workspace.empty())
    throw_http(503, "unavailable", "this server has no workspace, so it keeps no datasets");
  return Workspace(impl.options.workspace);
}

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
  fs::path source = scratch.path() / "files";
  const bool one_archive = req.files.size() == 1 && data::is_archive(req.files.begin()->second.filename);
  if (one_archive) {
    // Only the kind is taken from the client's name (".zip", ".tar.gz"): the reader goes by it.
    const std::string name = to_lower(fs::path(req.files.begin()->second.filename).filename().string());
    source = scratch.path() / ("upload" + name.substr(name.find('.')));
  }
  size_t written = 0;
  for (const auto& [field, part] : req.files) {
    if (part.filename.empty()) continue;  // a plain form field
    fs::path target = source;
    if (!one_archive) {
      try {
        target = source / data::safe_relative_path(part.filename);
      } catch (const DataError& e) {
        throw_http(400, "bad_request", fmt::format("field '{}': {}", field, e.what()));
      }
    }
    if (fs::exists(target))
      throw_http(400, "bad_request", fmt::format("'{}' is uploaded twice", part.filename));
    write_file_atomic(target, part.content);
    ++written;
  }
  if (written == 0)
    throw_http(400, "bad_request", "expected file parts (with file names), got only form fields");
  data::IngestOptions o;
  o.name = req.matches[1];
  o.format = req.has_param("format") ? req.get_param_value("format") : "auto";
  if (req.has_param("classes")) o.classes = split(req.get_param_value("classes"), ',');
  std::lock_guard lock(ingest_mutex());
  data::DatasetStore store(ws);
  const data::IngestResult r = store.ingest(source, o);  // DataError (422) naming the file or entry
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

}  // namespace

const std::vector<Route>& dataset_routes() {
  static const std::string one = kDatasetPath;
  // clang-format off
  static const std::vector<Route> kRoutes = {
      {"GET",  "/v1/datasets",   "/v1/datasets",               list_datasets},
      {"GET",  one,              "/v1/datasets/{name}",        get_dataset},
      {"POST", one + "/upload",  "/v1/datasets/{name}/upload", upload_dataset},
  };
  // clang-format on
  return kRoutes;
}

}  // namespace vigil::serve
