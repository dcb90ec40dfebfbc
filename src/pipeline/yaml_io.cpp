// Reading YAML with the typing ruamel.yaml's YAML 1.2 resolver applies (what DVC sees), and Python's way of
// printing values (what DVC prints). The emitter is in yaml_emit.cpp.

#include "vigil/pipeline/yaml_io.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/pipeline/yaml_resolve.h"

namespace vigil::pipeline {

namespace {

std::string escape_pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string remove_underscores(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  return s;
}

// ruamel's construct_yaml_int for YAML 1.2: sign, then 0b/0o/0x prefixes, else decimal (a leading zero is not
// octal in 1.2). Values beyond 64 bits become floats rather than failing.
Json construct_int(const std::string& text) {
  std::string s = remove_underscores(text);
  int sign = 1;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    if (s[0] == '-') sign = -1;
    s = s.substr(1);
  }
  int base = 10;
  if (s.size() > 1 && s[0] == '0' && (s[1] == 'b' || s[1] == 'o' || s[1] == 'x')) {
    base = s[1] == 'b' ? 2 : (s[1] == 'o' ? 8 : 16);
    s = s.substr(2);
  }
  if (s.empty()) return Json(0);
  unsigned long long v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || ptr != s.data() + s.size()) return Json(sign * std::stod(s));
  if (sign < 0) {
    if (v == 9223372036854775808ull) return Json(std::numeric_limits<long long>::min());
    if (v < 9223372036854775808ull) return Json(-static_cast<long long>(v));
    return Json(-static_cast<double>(v));
  }
  if (v <= 9223372036854775807ull) return Json(static_cast<long long>(v));
  return Json(static_cast<unsigned long long>(v));
}

Json construct_float(const std::string& text) {
  std::string s = remove_underscores(text);
  std::string lower;
  for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == ".inf" || lower == "+.inf") return Json(HUGE_VAL);
  if (lower == "-.inf") return Json(-HUGE_VAL);
  if (lower == ".nan") return Json(std::nan(""));
  return Json(std::strtod(s.c_str(), nullptr));
}

// A plain scalar as ruamel's safe loader types it. Timestamps stay strings: DVC never needs them as dates.
Json resolve_plain(const std::string& s) {
  switch (resolve_plain_tag(s)) {
    case PlainTag::kNull:
      return Json(nullptr);
    case PlainTag::kBool:
      return Json(s[0] == 't' || s[0] == 'T');
    case PlainTag::kInt:
      return construct_int(s);
    case PlainTag::kFloat:
      return construct_float(s);
    default:
      return Json(s);
  }
}

Json resolve_tagged(const std::string& tag, const std::string& s) {
  if (tag == "tag:yaml.org,2002:str") return Json(s);
  if (tag == "tag:yaml.org,2002:int") return construct_int(s);
  if (tag == "tag:yaml.org,2002:float") return construct_float(s);
  if (tag == "tag:yaml.org,2002:bool") return Json(s == "true" || s == "True" || s == "TRUE");
  if (tag == "tag:yaml.org,2002:null") return Json(nullptr);
  return Json(s);
}

Json convert(const YAML::Node& node, const std::string& pointer, YamlDoc& doc) {
  if (node.Mark().line >= 0) doc.lines[pointer] = node.Mark().line + 1;
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return Json(nullptr);
    case YAML::NodeType::Scalar: {
      const std::string& tag = node.Tag();
      if (tag == "?" || tag.empty()) return resolve_plain(node.Scalar());
      if (tag == "!") return Json(node.Scalar());
      return resolve_tagged(tag, node.Scalar());
    }
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      size_t i = 0;
      for (const auto& item : node) out.push_back(convert(item, pointer + "/" + std::to_string(i++), doc));
      return out;
    }
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (const auto& kv : node) {
        std::string key = kv.first.IsNull() ? "null" : kv.first.Scalar();
        const std::string child = pointer + "/" + escape_pointer_token(key);
        out[key] = convert(kv.second, child, doc);
        // An entry is where its key is: a nested mapping's own mark is the line of its first key.
        if (kv.first.Mark().line >= 0) doc.lines[child] = kv.first.Mark().line + 1;
      }
      return out;
    }
    default:
      return Json(nullptr);
  }
}

bool is_json_name(const std::string& name) {
  return name.size() >= 5 && name.compare(name.size() - 5, 5, ".json") == 0;
}

std::string python_str_repr(const std::string& s) {
  // Python prefers single quotes and switches to double quotes only when that avoids escaping.
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == static_cast<unsigned char>(quote)) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

std::string python_repr(const Json& v) {
  if (v.is_string()) return python_str_repr(v.get<std::string>());
  return python_str(v);
}

}  // namespace

int YamlDoc::line_of(const std::string& pointer) const {
  std::string p = pointer;
  while (true) {
    auto it = lines.find(p);
    if (it != lines.end()) return it->second;
    if (p.empty()) return 0;
    auto slash = p.rfind('/');
    p = slash == std::string::npos ? std::string() : p.substr(0, slash);
  }
}

YamlDoc parse_yaml(std::string_view text, const std::string& name) {
  YamlDoc doc;
  try {
    YAML::Node root = YAML::Load(std::string(text));
    doc.value = convert(root, "", doc);
  } catch (const YAML::Exception& e) {
    throw InvalidArgument(fmt::format("{}:{}: expected valid YAML, got a syntax error: {}", name,
                                      e.mark.line >= 0 ? e.mark.line + 1 : 0, e.msg));
  }
  return doc;
}

YamlDoc load_yaml_file(const std::filesystem::path& path) {
  return parse_yaml(read_file(path), to_utf8(path));
}

Json parse_data_text(std::string_view text, const std::string& name) {
  if (is_json_name(name)) {
    try {
      return Json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      throw InvalidArgument(fmt::format("{}: expected valid JSON, got: {}", name, e.what()));
    }
  }
  return parse_yaml(text, name).value;
}

Json load_data_file(const std::filesystem::path& path) {
  return parse_data_text(read_file(path), to_utf8(path));
}

std::string python_float_repr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (value == 0) return std::signbit(value) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then laid out as Python's float_repr_style 'short' does: positional when
  // -4 < decimal exponent <= 16, scientific with a signed two-digit exponent otherwise.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  const bool negative = sci[0] == '-';
  if (negative) sci = sci.substr(1);
  const auto e_pos = sci.find('e');
  std::string mantissa = sci.substr(0, e_pos);
  const int exp10 = std::stoi(sci.substr(e_pos + 1));
  std::string digits;
  for (char c : mantissa)
    if (c != '.') digits += c;
  const int decpt = exp10 + 1;
  std::string out;
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out = "0." + std::string(-decpt, '0') + digits;
    } else if (decpt >= static_cast<int>(digits.size())) {
      out = digits + std::string(decpt - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, decpt) + "." + digits.substr(decpt);
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += fmt::format("e{}{:02d}", exp10 < 0 ? '-' : '+', std::abs(exp10));
  }
  return negative ? "-" + out : out;
}

bool python_equal(const Json& a, const Json& b) {
  auto numeric = [](const Json& j) { return j.is_number() || j.is_boolean(); };
  if (numeric(a) && numeric(b)) {  // bool is an int subclass in Python: True == 1
    auto as_double = [](const Json& j) {
      return j.is_boolean() ? (j.get<bool>() ? 1.0 : 0.0) : j.get<double>();
    };
    if (a.is_number_float() || b.is_number_float()) return as_double(a) == as_double(b);
    auto as_int = [](const Json& j) {
      return j.is_boolean() ? (j.get<bool>() ? 1LL : 0LL) : j.get<long long>();
    };
    return as_int(a) == as_int(b);
  }
  if (a.type() != b.type()) return false;
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (const auto& [k, v] : a.items())
      if (!b.contains(k) || !python_equal(v, b[k])) return false;
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!python_equal(a[i], b[i])) return false;
    return true;
  }
  return a == b;
}

std::string python_str(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "None";
    case Json::value_t::boolean:
      return v.get<bool>() ? "True" : "False";
    case Json::value_t::number_integer:
      return std::to_string(v.get<long long>());
    case Json::value_t::number_unsigned:
      return std::to_string(v.get<unsigned long long>());
    case Json::value_t::number_float:
      return python_float_repr(v.get<double>());
    case Json::value_t::string:
      return v.get<std::string>();
    case Json::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + python_repr(v[i]);
      return out + "]";
    }
    case Json::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, item] : v.items()) {
        out += (first ? "" : ", ") + python_str_repr(k) + ": " + python_repr(item);
        first = false;
      }
      return out + "}";
    }
    default:
      return "";
  }
}

}  // namespace vigil::pipeline
