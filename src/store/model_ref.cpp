#include "vigil/store/model_ref.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/store/store.h"

namespace vigil::store {

bool looks_like_model_file(const std::string& spec) {
  const std::string ext = lower_extension(spec);
  return ext == ".vgm" || ext == ".ckpt" || ext == ".pth" || ext == ".pt" || ext == ".torchscript" ||
         spec.find('/') == 0 || spec.rfind("./", 0) == 0 || spec.rfind("../", 0) == 0 ||
         std::count(spec.begin(), spec.end(), '/') > 1;
}

ResolvedModel resolve_model_spec(const std::string& spec, const std::string& workspace) {
  std::error_code ec;
  if (workspace.empty() || std::filesystem::exists(spec, ec) || looks_like_model_file(spec))
    return {spec, "", ""};
  Store registry{Workspace(workspace)};
  ModelVersion v;
  try {
    v = registry.resolve_model(spec);
  } catch (const InvalidArgument& e) {
    throw NotFound(
        fmt::format("'{}' is neither a model file nor a registered model reference: {}", spec, e.what()));
  } catch (const NotFound& e) {
    throw NotFound(fmt::format("'{}' is not a model file, and the registry says: {}", spec, e.what()));
  }
  registry.verify_model_version(v);  // a registered file that changed is refused, never loaded
  return {v.file, std::to_string(v.version), v.name};
}

}  // namespace vigil::store
