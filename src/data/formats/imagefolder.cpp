// imagefolder (classification): root/<class>/<files>, or root/{train,val,test}/<class>/<files>.
// Classes are the sorted folder names (byte order, as torchvision's ImageFolder), united over splits.
// Every non-hidden file in a class folder is a sample whatever its extension: deciding what is an image is
// validation's job (magic bytes), and silently dropping a mislabelled .jpeg.txt would hide it.

#include <algorithm>
#include <set>

#include "builtin.h"
#include "format_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"

namespace vigil::data {

namespace {

struct Pending {
  Sample sample;
  std::string class_name;
};

std::string normalise_split(const std::string& name) {
  const std::string n = to_lower(name);
  if (n == "train" || n == "training") return "train";
  if (n == "val" || n == "valid" || n == "validation") return "val";
  if (n == "test" || n == "testing") return "test";
  return "";
}

/// Split layout only when every top folder is a split name; a lone "test" beside "cat" is a class.
bool is_split_layout(const std::vector<fs::path>& top) {
  if (top.empty()) return false;
  return std::all_of(top.begin(), top.end(),
                     [](const fs::path& d) { return !normalise_split(d.filename().string()).empty(); });
}

/// Files in `dir` that belong to no class folder: documentation is expected, images there are probably lost.
void report_stray(const fs::path& root, const fs::path& dir, Dataset& ds) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, fs::directory_options::skip_permission_denied, ec)) {
    if (!e.is_regular_file(ec) || formats::is_hidden(e.path())) continue;
    const bool image = formats::has_image_extension(e.path());
    ds.add_issue("stray_file", image ? Severity::kWarning : Severity::kInfo,
                 formats::rel_utf8(root, e.path()), 0, "not inside a class folder; ignored");
  }
}

void collect_class(const fs::path& root, const fs::path& class_dir, const std::string& split, Dataset& ds,
                   std::vector<Pending>& out) {
  const std::string name = to_utf8(class_dir.filename());
  std::error_code ec;
  size_t before = out.size();
  for (auto it =
           fs::recursive_directory_iterator(class_dir, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string rel = formats::rel_utf8(root, it->path());
    if (formats::is_hidden(it->path())) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      ds.add_issue("hidden_file", Severity::kInfo, rel, 0, "hidden file or folder; skipped");
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    Pending p;
    p.sample.file = rel;
    p.sample.split = split;
    p.sample.bytes = formats::file_size_or_zero(it->path());
    p.class_name = name;
    out.push_back(std::move(p));
  }
  if (ec) {
    ds.add_issue("unreadable", Severity::kError, formats::rel_utf8(root, class_dir), 0,
                 fmt::format("cannot list the folder: {}", ec.message()));
  }
  if (out.size() == before) {
    ds.add_issue("empty_class", Severity::kWarning, formats::rel_utf8(root, class_dir), 0,
                 fmt::format("class folder '{}' has no files", name));
  }
}

void report_hidden_dirs(const fs::path& root, const fs::path& dir, Dataset& ds) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, fs::directory_options::skip_permission_denied, ec)) {
    if (e.is_directory(ec) && formats::is_hidden(e.path())) {
      ds.add_issue("hidden_file", Severity::kInfo, formats::rel_utf8(root, e.path()), 0,
                   "hidden folder; not a class");
    }
  }
}

Dataset read_imagefolder(const fs::path& root, const ReadOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw NotFound(fmt::format("image folder not found: {}", to_utf8(root)));
  Dataset ds;
  ds.task = Task::kClassification;
  ds.root = root;
  const auto top = formats::list_subdirs(root);
  std::vector<std::pair<fs::path, std::string>> bases;  // (folder holding class folders, split)
  if (is_split_layout(top)) {
    report_stray(root, root, ds);
    for (const auto& d : top) bases.emplace_back(d, normalise_split(d.filename().string()));
  } else {
    bases.emplace_back(root, "");
  }
  std::vector<Pending> pending;
  std::set<std::string> names;
  for (const auto& [base, split] : bases) {
    report_stray(root, base, ds);
    report_hidden_dirs(root, base, ds);
    for (const auto& class_dir : formats::list_subdirs(base)) {
      names.insert(to_utf8(class_dir.filename()));
      collect_class(root, class_dir, split, ds, pending);
    }
  }
  ds.classes =
      options.classes.empty() ? std::vector<std::string>(names.begin(), names.end()) : options.classes;
  for (auto& p : pending) {
    p.sample.label = ds.class_index(p.class_name);
    if (p.sample.label < 0) {
      ds.add_issue("unknown_class", Severity::kError, p.sample.file, 0,
                   fmt::format("expected a class in ({}), got folder '{}'; skipped", join(ds.classes, ", "),
                               p.class_name));
      continue;
    }
    ds.samples.push_back(std::move(p.sample));
  }
  formats::sort_samples(ds);
  return ds;
}

}  // namespace

FormatInfo make_imagefolder_format() {
  FormatInfo info;
  info.name = "imagefolder";
  info.description = "classification: <class>/<image> folders, optionally under train/ val/ test/";
  info.read = read_imagefolder;
  return info;
}

}  // namespace vigil::data
