#include "vigil/store/model_archive.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/hash.h"
#include "vigil/core/tar.h"

namespace vigil::store {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kFormat = "vigil-model-archive/1";
constexpr const char* kManifest = "vigil-model.json";
constexpr const char* kModel = "model.ckpt";

json manifest_of(const ModelVersion& v) {
  json info = json::object();
  if (!v.info_json.empty()) {
    try {
      info = json::parse(v.info_json);
    } catch (const json::exception&) {
      info = v.info_json;  // kept as text rather than lost
    }
  }
  return {{"format", kFormat},
          {"name", v.name},
          {"version", v.version},
          {"created_ms", v.created_ms},
          {"sha256", v.sha256},
          {"size", v.size},
          {"run_id", v.run_id},
          {"dataset_id", v.dataset_id},
          {"arch", v.arch},
          {"task", v.task},
          {"description", v.description},
          {"metrics", v.metrics},
          {"info", info},
          {"source", v.source},
          {"aliases", v.aliases}};
}

}  // namespace

ModelVersion export_model_version(Store& store, const std::string& spec, const fs::path& out) {
  const ModelVersion v = store.resolve_model(spec);
  store.verify_model_version(v);
  if (out.has_parent_path()) ensure_dir(out.parent_path());
  const fs::path tmp = out.string() + ".partial";
  try {
    TarWriter tar(tmp);
    tar.add_bytes(kManifest, manifest_of(v).dump(2) + "\n");
    tar.add_file(kModel, v.file);
    tar.finish();
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  fs::rename(tmp, out, ec);
  if (ec) throw IoError(fmt::format("cannot write {}: {}", to_utf8(out), ec.message()));
  return v;
}

ImportResult import_model_archive(Store& store, const fs::path& archive, const std::string& name) {
  const std::string where = to_utf8(archive);
  std::error_code ec;
  if (!fs::is_regular_file(archive, ec))
    throw NotFound(fmt::format("model archive {} does not exist", where));
  json manifest;
  bool has_model = false;
  std::string sha, tmp_name;
  ensure_dir(store.registry_dir());
  const fs::path tmp =
      store.registry_dir() /
      fmt::format(".import-{}.ckpt", hash_bytes(to_utf8(fs::absolute(archive))).substr(0, 12));
  read_tar(archive, [&](const TarEntry& e, const std::function<size_t(char*, size_t)>& read) {
    std::vector<char> buf(1 << 20);
    if (e.name == kManifest) {
      std::string text;
      for (size_t n; (n = read(buf.data(), buf.size())) > 0;) text.append(buf.data(), n);
      try {
        manifest = json::parse(text);
      } catch (const json::exception& ex) {
        throw DataError(fmt::format("{}: {} is not valid JSON: {}", where, kManifest, ex.what()));
      }
    } else if (e.name == kModel) {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) throw IoError(fmt::format("cannot write {}", to_utf8(tmp)));
      Hasher h;
      for (size_t n; (n = read(buf.data(), buf.size())) > 0;) {
        h.update(std::string_view(buf.data(), n));
        out.write(buf.data(), static_cast<std::streamsize>(n));
      }
      if (!out.flush()) throw IoError(fmt::format("writing {} failed (disk full?)", to_utf8(tmp)));
      sha = h.hex();
      has_model = true;
    }
  });
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      fs::remove(p, e);
    }
  } cleanup{tmp};
  if (manifest.is_null())
    throw DataError(fmt::format("{}: not a vigil model archive (no {})", where, kManifest));
  if (!has_model) throw DataError(fmt::format("{}: the archive holds no {}", where, kModel));
  if (manifest.value("format", "") != kFormat)
    throw DataError(
        fmt::format("{}: expected format {}, got '{}'", where, kFormat, manifest.value("format", "")));
  ImportResult r;
  try {
    const std::string recorded = manifest.at("sha256").get<std::string>();
    if (recorded != sha) {
      throw DataError(
          fmt::format("{}: the model's sha256 is {} but the archive records {}: the file was damaged "
                      "or altered in transit",
                      where, sha, recorded));
    }
    NewModelVersion nv;
    nv.name = name.empty() ? manifest.at("name").get<std::string>() : name;
    r.original =
        fmt::format("{}/{}", manifest.at("name").get<std::string>(), manifest.at("version").get<int>());
    if (auto existing = store.find_model_version_by_hash(nv.name, sha)) {
      r.version = *existing;
      r.already_present = true;
      return r;
    }
    nv.run_id = manifest.value("run_id", "");
    nv.dataset_id = manifest.value("dataset_id", "");
    nv.arch = manifest.value("arch", "");
    nv.task = manifest.value("task", "");
    nv.description = manifest.value("description", "");
    const json metrics = manifest.value("metrics", json::object());
    for (const auto& [k, v] : metrics.items()) nv.metrics[k] = v.is_number() ? v.get<double>() : std::nan("");
    const json info = manifest.value("info", json::object());
    nv.info_json = info.is_string() ? info.get<std::string>() : info.dump();
    nv.source = fmt::format("import of {} ({})", r.original, fs::path(archive).filename().string());
    r.version = store.register_model_file(nv, tmp);
  } catch (const json::exception& e) {
    throw DataError(fmt::format("{}: {} is malformed: {}", where, kManifest, e.what()));
  }
  return r;
}

}  // namespace vigil::store
