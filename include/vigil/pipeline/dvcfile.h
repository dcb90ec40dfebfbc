#pragma once
/// A dvc.yaml pipeline, loaded and checked as DVC 3 does (dvc/schema.py STAGE_DEFINITION,
/// dvc/stage/loader.py, dvc/dependency/__init__.py _merge_params, dvc/parsing for ${...} interpolation).

#include <filesystem>
#include <string>
#include <vector>

#include "vigil/pipeline/yaml_io.h"

namespace vigil::pipeline {

/// An output as declared under `outs`, `metrics` or `plots`.
struct OutDef {
  std::string path;  ///< as written, relative to the stage's wdir
  bool cache = true;
  bool persist = false;  ///< not removed before the command runs
  bool metric = false;
  bool plot = false;
};

/// A params dependency: keys of one params file, or the whole file.
struct ParamsDef {
  std::string file = "params.yaml";  ///< relative to the stage's wdir
  std::vector<std::string> keys;     ///< dotted keys, sorted as DVC records them; empty with whole_file
  bool whole_file = false;
};

/// One stage after interpolation.
struct StageDef {
  std::string name;
  Json cmd;                           ///< string or list, exactly as recorded in dvc.lock
  std::vector<std::string> commands;  ///< what runs, one shell each: list items, or the string's lines
  std::string wdir = ".";
  std::filesystem::path wdir_path;  ///< absolute, normalised
  std::vector<std::string> deps;    ///< as written, relative to wdir
  std::vector<ParamsDef> params;
  std::vector<OutDef> outs;  ///< outs, metrics and plots together
  bool frozen = false;
  bool always_changed = false;
  std::string desc;
  int line = 0;  ///< line of the stage in dvc.yaml

  /// A path of this stage (relative to wdir) made absolute and normal.
  std::filesystem::path resolve(const std::string& rel) const;
};

/// A loaded dvc.yaml.
struct Pipeline {
  std::filesystem::path file;             ///< dvc.yaml, absolute
  std::filesystem::path dir;              ///< its folder
  std::filesystem::path root;             ///< the DVC project root: nearest folder up with .dvc/, else `dir`
  std::filesystem::path lock_path;        ///< dvc.lock beside dvc.yaml
  std::vector<StageDef> stages;           ///< in file order
  std::vector<std::string> metrics;       ///< top-level `metrics:` files, relative to `dir`
  std::vector<std::string> params_files;  ///< top-level `params:` files, relative to `dir`

  const StageDef* find(const std::string& name) const;
  /// The stage called `name`; throws NotFound listing the valid names.
  const StageDef& stage(const std::string& name) const;
  std::vector<std::string> stage_names() const;
  /// `path` relative to the folder of dvc.yaml, for messages ("data/raw.csv").
  std::string display(const std::filesystem::path& path) const;
};

/// Loads and checks dvc.yaml. Throws NotFound when it is missing and InvalidArgument naming the file, line
/// and stage for anything DVC would reject (unknown fields list the valid ones; foreach/matrix are not
/// supported).
Pipeline load_pipeline(const std::filesystem::path& dvc_yaml);

}  // namespace vigil::pipeline
