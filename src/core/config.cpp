#include "vigil/core/config.h"

#include "vigil/core/fs.h"
#include "vigil/core/strings.h"

namespace vigil::config {

void set_path(YAML::Node& tree, const std::string& dotted_key, const std::string& value) {
  auto parts = split(dotted_key, '.');
  for (const auto& p : parts) {
    VIGIL_CHECK(!p.empty(), "expected an override like a.b=c, got an empty key part in '{}'", dotted_key);
  }
  YAML::Node parsed;
  try {
    parsed = YAML::Load(value);
  } catch (const YAML::Exception&) {
    parsed = YAML::Node(value);  // not valid YAML: keep it as a plain string
  }
  // A one-line value is a list or mapping only in flow syntax ([1, 2], {a: 1}); "-" (stderr for --access-log)
  // or "a: b" read as block YAML would turn a plain string into a structure.
  const std::string_view text = trim(value);
  if ((parsed.IsSequence() || parsed.IsMap()) &&
      (text.empty() || (text.front() != '[' && text.front() != '{')))
    parsed = YAML::Node(value);
  // yaml-cpp nodes are handles; walk down with fresh handles so assignment never rebinds the parent.
  std::vector<YAML::Node> chain{tree};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = chain.back()[parts[i]];
    if (next && !next.IsMap() && !next.IsNull()) {
      throw InvalidArgument(fmt::format("override {}: '{}' is a value, not a section", dotted_key,
                                        join({parts.begin(), parts.begin() + i + 1}, ".")));
    }
    if (!next || next.IsNull()) {
      chain.back()[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next = chain.back()[parts[i]];
    }
    chain.push_back(next);
  }
  chain.back()[parts.back()] = parsed;
}

YAML::Node build_tree(const Source& source) {
  YAML::Node tree(YAML::NodeType::Map);
  if (!source.file.empty()) {
    const std::string text = read_file(source.file);
    try {
      tree = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
      throw InvalidArgument(fmt::format("{}:{}:{}: YAML syntax error: {}", source.file, e.mark.line + 1,
                                        e.mark.column + 1, e.msg));
    }
    if (!tree || tree.IsNull()) tree = YAML::Node(YAML::NodeType::Map);
    if (!source.key.empty()) {
      // reset(), not operator=: assigning yaml-cpp nodes writes through into the tree they alias.
      YAML::Node node = YAML::Clone(tree);
      for (const auto& part : split(source.key, '.')) {
        const YAML::Node& parent = node;  // const lookup: non-const operator[] would create the key
        VIGIL_CHECK(parent.IsMap() && parent[part], "expected a key '{}' (--config-key) in {}, got none",
                    source.key, source.file);
        node.reset(parent[part]);
      }
      tree.reset(node);
    }
    VIGIL_CHECK(tree.IsMap(), "expected a mapping of options at the top of {}{}, got another YAML type",
                source.file, source.key.empty() ? "" : " key " + source.key);
  }
  for (const auto& o : source.overrides) {
    auto eq = o.find('=');
    VIGIL_CHECK(eq != std::string::npos && eq > 0, "expected an override like a.b=c, got '{}'", o);
    set_path(tree, std::string(trim(o.substr(0, eq))), std::string(o.substr(eq + 1)));
  }
  return tree;
}

void write_resolved(const std::string& yaml_text, const std::filesystem::path& dir,
                    const std::string& file_name) {
  write_file_atomic(dir / file_name, yaml_text);
}

namespace detail {

void throw_unknown_key(const std::string& key, const std::vector<std::string>& valid) {
  auto best = closest_match(key, valid);
  if (best) throw InvalidArgument(fmt::format("unknown config key '{}'; did you mean '{}'?", key, *best));
  throw InvalidArgument(fmt::format("unknown config key '{}'; valid keys here: {}", key, join(valid, ", ")));
}

void throw_bad_value(const std::string& key, const char* expected, const YAML::Node& node) {
  std::string got;
  if (!node || node.IsNull()) {
    got = "nothing";
  } else if (node.IsScalar()) {
    got = "'" + node.Scalar() + "'";
  } else {
    YAML::Emitter e;
    e << YAML::Flow << node;
    got = e.c_str();
  }
  std::string where;
  if (node.Mark().line >= 0) where = fmt::format(" (line {})", node.Mark().line + 1);
  throw InvalidArgument(fmt::format("config key '{}'{}: expected {}, got {}", key, where, expected, got));
}

std::string type_name_for(const bool*) {
  return "true or false";
}
std::string type_name_for(const int*) {
  return "an integer";
}
std::string type_name_for(const long*) {
  return "an integer";
}
std::string type_name_for(const long long*) {
  return "an integer";
}
std::string type_name_for(const unsigned*) {
  return "a non-negative integer";
}
std::string type_name_for(const unsigned long*) {
  return "a non-negative integer";
}
std::string type_name_for(const float*) {
  return "a number";
}
std::string type_name_for(const double*) {
  return "a number";
}
std::string type_name_for(const std::string*) {
  return "a string";
}

}  // namespace detail
}  // namespace vigil::config
