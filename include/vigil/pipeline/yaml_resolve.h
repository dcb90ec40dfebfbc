#pragma once
/// ruamel.yaml's YAML 1.2 implicit resolver (resolver.py, `implicit_resolvers`): the type a plain (unquoted)
/// scalar takes. The loader uses it to type values; the emitter uses it to decide when a string must be
/// quoted (a string that would read back as another type, e.g. '2.0', 'true', '' or 'null').

#include <string_view>

namespace vigil::pipeline {

enum class PlainTag { kStr, kNull, kBool, kInt, kFloat, kTimestamp, kMerge, kValue, kYaml };

/// The tag a plain scalar resolves to under YAML 1.2 as ruamel implements it.
PlainTag resolve_plain_tag(std::string_view s);

}  // namespace vigil::pipeline
