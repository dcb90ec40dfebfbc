#include "data_args.h"

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include <map>

#include "vigil/core/fs.h"
#include "vigil/core/progress.h"
#include "vigil/data/inspect.h"

namespace vigil::cli {

std::filesystem::path DatasetArg::default_out(const Workspace& ws, const std::string& what) const {
  if (version) return ws.datasets_dir() / version->id / what;
  auto base = std::filesystem::path(display).filename().string();
  if (base.empty()) base = std::filesystem::path(display).parent_path().filename().string();
  return ws.root() / "reports" / what / base;
}

DatasetArg load_dataset_arg(const Context& ctx, const std::string& ref, const std::string& format) {
  data::DatasetStore store(ctx.workspace());
  DatasetArg out;
  bool is_path = std::filesystem::exists(ref);
  if (!is_path) {
    try {
      out.version = store.resolve(ref);
    } catch (const NotFound&) {
      if (!is_path) throw;
    }
  }
  if (out.version) {
    out.ds = store.load(*out.version);
    out.images = store.image_source();
    out.display = out.version->name + "@" + out.version->short_id();
    return out;
  }
  data::register_builtin_formats();
  const std::string fmt_name = format.empty() || format == "auto" ? data::detect_format(ref) : format;
  out.ds = data::read_dataset(ref, fmt_name);
  auto root = out.ds.root;
  out.images = [root](const data::Sample& s) { return root / std::filesystem::u8path(s.file); };
  out.display = to_utf8(std::filesystem::absolute(ref));
  Progress progress("inspecting images", out.ds.samples.size(), "img");
  data::InspectOptions inspect;
  inspect.threads = ctx.threads;
  data::inspect_images(out.ds, out.images, inspect, &progress);
  progress.finish();
  return out;
}

void print_issues(const std::vector<data::Issue>& issues, const std::string& heading) {
  if (issues.empty()) return;
  std::map<std::string, std::vector<const data::Issue*>> by_kind;
  for (const auto& i : issues) by_kind[i.kind].push_back(&i);
  fmt::print(stderr, "{} ({}):\n", heading, issues.size());
  for (const auto& [kind, list] : by_kind) {
    fmt::print(stderr, "  {} ({}):\n", kind, list.size());
    for (const auto* i : list) {
      std::string where = i->file;
      if (i->line > 0) where += fmt::format(":{}", i->line);
      fmt::print(stderr, "    {} [{}] {}\n", where, data::severity_name(i->severity), i->message);
    }
  }
}

}  // namespace vigil::cli
