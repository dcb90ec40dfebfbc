#pragma once
/// Configuration: YAML files plus `--set a.b=c` overrides filling Options structs.
///
/// An Options struct lists its fields once, in a member template used for reading, writing and listing keys:
///
///   struct SplitOptions {
///     double val = 0.2;
///     AugmentOptions augment;                       // nested Options: a YAML mapping
///     template <class V> void visit(V& v) {
///       v("val", val, "fraction of samples for validation");
///       v("augment", augment, "augmentations");
///     }
///     void validate() const;                        // range checks, throws InvalidArgument
///   };
///
/// Order of precedence: defaults < YAML file < --set overrides (and CLI flags, which are overrides too).
/// An unknown key is an error naming the key and the closest valid one.

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "vigil/core/error.h"

namespace vigil::config {

template <class T, class V>
concept VisitableWith = requires(T& t, V& v) {
  t.visit(v);
};

/// Where a configuration comes from: an optional YAML file and ordered `key=value` overrides.
struct Source {
  std::string file;                    ///< YAML file; empty for none
  std::vector<std::string> overrides;  ///< "a.b=c", applied in order after the file
  /// Read the options from this (dotted) key of the file instead of its top, e.g. the `train` section of a
  /// DVC params.yaml that a dvc.yaml stage lists under `params:`.
  std::string key;
};

/// Loads the file (if any) and applies the overrides to one YAML tree. Throws InvalidArgument naming
/// the file and line for YAML syntax errors and the override for a malformed `key=value`.
YAML::Node build_tree(const Source& source);

/// Sets `dotted.key` in `tree` to `value` parsed as YAML (so `3`, `true`, `[1,2]` keep their types).
void set_path(YAML::Node& tree, const std::string& dotted_key, const std::string& value);

namespace detail {
[[noreturn]] void throw_unknown_key(const std::string& key, const std::vector<std::string>& valid);
[[noreturn]] void throw_bad_value(const std::string& key, const char* expected, const YAML::Node& node);
std::string type_name_for(const bool*);
std::string type_name_for(const int*);
std::string type_name_for(const long*);
std::string type_name_for(const long long*);
std::string type_name_for(const unsigned*);
std::string type_name_for(const unsigned long*);
std::string type_name_for(const float*);
std::string type_name_for(const double*);
std::string type_name_for(const std::string*);
template <class T>
std::string type_name_for(const std::vector<T>*) {
  return "a list of " + type_name_for(static_cast<const T*>(nullptr)) + "s";
}

/// Collects the keys an Options struct declares.
struct KeyCollector {
  std::vector<std::string> keys;
  template <class T>
  void operator()(const char* key, T&, const char* = "") {
    keys.emplace_back(key);
  }
};

/// Reads a YAML mapping into an Options struct.
class Reader {
 public:
  Reader(const YAML::Node& node, std::string prefix) : node_(node), prefix_(std::move(prefix)) {}

  template <class T>
  void operator()(const char* key, T& field, const char* = "") {
    const YAML::Node child = node_[key];
    if (!child) return;
    const std::string full = prefix_ + key;
    if constexpr (VisitableWith<T, Reader>) {
      if (!child.IsMap()) throw_bad_value(full, "a mapping of options", child);
      read_into(child, field, full + ".");
    } else {
      if (child.IsNull()) throw_bad_value(full, type_name_for(&field).c_str(), child);
      try {
        field = child.as<T>();
      } catch (const YAML::Exception&) {
        throw_bad_value(full, type_name_for(&field).c_str(), child);
      }
    }
  }

  template <class O>
  static void read_into(const YAML::Node& node, O& options, const std::string& prefix) {
    KeyCollector collector;
    options.visit(collector);
    for (const auto& kv : node) {
      const auto k = kv.first.as<std::string>();
      bool known = false;
      for (const auto& valid : collector.keys) known = known || valid == k;
      if (!known) {
        std::vector<std::string> full;
        for (const auto& valid : collector.keys) full.push_back(prefix + valid);
        throw_unknown_key(prefix + k, full);
      }
    }
    Reader reader(node, prefix);
    options.visit(reader);
  }

 private:
  YAML::Node node_;
  std::string prefix_;
};

/// Writes an Options struct as a YAML mapping.
struct Writer {
  YAML::Node node{YAML::NodeType::Map};
  template <class T>
  void operator()(const char* key, T& field, const char* = "") {
    if constexpr (VisitableWith<T, Writer>) {
      Writer sub;
      field.visit(sub);
      node[key] = sub.node;
    } else {
      node[key] = field;
    }
  }
};

/// Lists every dotted key with its help text.
struct Lister {
  std::string prefix;
  std::vector<std::pair<std::string, std::string>> entries;
  template <class T>
  void operator()(const char* key, T& field, const char* help = "") {
    if constexpr (VisitableWith<T, Lister>) {
      Lister sub{prefix + key + ".", {}};
      field.visit(sub);
      entries.insert(entries.end(), sub.entries.begin(), sub.entries.end());
    } else {
      entries.emplace_back(prefix + key, help);
    }
  }
};
}  // namespace detail

/// Fills `options` from a YAML tree (unknown keys are errors), then calls options.validate() if it exists.
template <class O>
void bind(const YAML::Node& tree, O& options) {
  if (tree && !tree.IsNull()) {
    if (!tree.IsMap()) detail::throw_bad_value("<root>", "a mapping of options", tree);
    detail::Reader::read_into(tree, options, "");
  }
  if constexpr (requires { options.validate(); }) options.validate();
}

/// Defaults, then the source's file, then its overrides.
template <class O>
O load(const Source& source) {
  O options;
  bind(build_tree(source), options);
  return options;
}

/// The fully resolved options as YAML text (what is written beside every output).
template <class O>
std::string to_yaml(const O& options) {
  detail::Writer w;
  const_cast<O&>(options).visit(w);
  YAML::Emitter out;
  out << w.node;
  return std::string(out.c_str()) + "\n";
}

/// Every key the options accept, dotted, with help text.
template <class O>
std::vector<std::pair<std::string, std::string>> list_keys() {
  O options;
  detail::Lister l;
  options.visit(l);
  return l.entries;
}

/// Writes `config.yaml` (the resolved options) into `dir`.
void write_resolved(const std::string& yaml_text, const std::filesystem::path& dir,
                    const std::string& file_name = "config.yaml");

}  // namespace vigil::config
