#pragma once
/// What `--model` means to the commands that load a model (`vigil serve`, `vigil predict`): a file, or a
/// registered model of the workspace (NAME@alias, NAME/k, NAME:k, NAME = latest) resolved to the registry's
/// read-only copy, checked against its SHA-256.

#include <string>

namespace vigil::store {

struct ResolvedModel {
  std::string file;     ///< the file to load
  std::string version;  ///< the registry's version number; "" for a plain file
  std::string name;     ///< the registered name; "" for a plain file
};

/// True when `spec` reads as a path rather than a reference: a model file extension (.vgm, .ckpt, .pth, .pt,
/// .torchscript), an absolute or ./ ../ path, or more than one '/'.
bool looks_like_model_file(const std::string& spec);

/// `spec` as a file when it exists, looks like a path, or there is no workspace (empty); otherwise resolved
/// through the workspace's registry. NotFound says what is missing: the file, or what the registry has.
ResolvedModel resolve_model_spec(const std::string& spec, const std::string& workspace);

}  // namespace vigil::store
