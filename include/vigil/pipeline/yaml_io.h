#pragma once
/// YAML as DVC reads and writes it. DVC loads dvc.yaml, dvc.lock and params files with ruamel.yaml's safe
/// loader (YAML 1.2 core schema: `yes` is a string, `1e3` a float) and writes dvc.lock with ruamel's
/// round-trip dumper (block style, 2-space indent, sequences not indented under their key, lines folded at 80
/// columns). These functions reproduce both, so a dvc.lock written here is byte-for-byte what DVC writes.

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

namespace vigil::pipeline {

/// Values keep the key order of the file they came from, as ruamel's loader does.
using Json = nlohmann::ordered_json;

/// A parsed YAML document plus the 1-based line of every node, keyed by JSON pointer ("/stages/train/cmd"),
/// so errors about a value can name the line it is on.
struct YamlDoc {
  Json value;
  std::map<std::string, int> lines;
  /// Line of the node at `pointer`, or of its closest ancestor that has one (0 when unknown).
  int line_of(const std::string& pointer) const;
};

/// Parses YAML text with YAML 1.2 core-schema typing. `name` is used in errors ("dvc.yaml:3: ...").
/// Throws InvalidArgument naming the file and line on a syntax error.
YamlDoc parse_yaml(std::string_view text, const std::string& name);
/// Reads and parses a YAML file. Throws NotFound when it is missing, InvalidArgument when it does not parse.
YamlDoc load_yaml_file(const std::filesystem::path& path);
/// Reads a params or metrics file: JSON for *.json, YAML otherwise. Throws like load_yaml_file.
Json load_data_file(const std::filesystem::path& path);
/// Parses params/metrics bytes (e.g. from `git show`) the same way; `name` decides JSON vs YAML.
Json parse_data_text(std::string_view text, const std::string& name);

/// The YAML text ruamel.yaml's round-trip dumper writes for `root` (DVC's dump settings).
std::string dump_yaml(const Json& root);

/// UTF-8 to code points the way Python's surrogateescape decoding does it: a byte that is not part of valid
/// UTF-8 becomes a lone surrogate U+DC80..U+DCFF (as file names with such bytes appear to DVC).
std::u32string decode_code_points(std::string_view utf8);
/// The inverse of decode_code_points (lone surrogates U+DC80..U+DCFF go back to their byte).
void append_code_point(std::string& out, char32_t cp);

/// Python's repr() of a float ("0.1", "1e-05", "1e+16", "inf").
std::string python_float_repr(double value);
/// Equality as Python compares the loaded values: mappings regardless of key order, 1 == 1.0 == True.
bool python_equal(const Json& a, const Json& b);
/// Python's str() of a value (True, None, [1, 'a'], {'k': 2}): what DVC prints in params and metrics tables.
std::string python_str(const Json& value);

}  // namespace vigil::pipeline
