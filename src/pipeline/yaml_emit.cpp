// A YAML emitter that writes what ruamel.yaml 0.17's round-trip dumper writes with DVC's settings
// (dvc/utils/serialize/_yaml.py: YAML(), default_flow_style=False): block collections, 2-space indents,
// sequences not indented under a mapping key, empty collections as {} / [], None as an empty value, and
// scalar styles and line folding (best_width 80) chosen exactly as ruamel's emitter.py does
// (analyze_scalar, choose_scalar_style, write_plain, write_single_quoted, write_double_quoted, write_indent).
// Only the states a dvc.lock can reach are implemented; comments, anchors, tags and flow content are not.

#include <fmt/format.h>

#include <cmath>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "vigil/pipeline/yaml_io.h"
#include "vigil/pipeline/yaml_resolve.h"

namespace vigil::pipeline {

PlainTag resolve_plain_tag(std::string_view sv) {
  // The patterns of ruamel's resolver.py for YAML 1.2 (written there with re.X, so their spaces do not
  // count).
  static const std::regex kBool("true|True|TRUE|false|False|FALSE");
  static const std::regex kFloat(
      "[-+]?(?:[0-9][0-9_]*)\\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
      "|[-+]?\\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN)");
  static const std::regex kInt("[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+");
  static const std::regex kNull("~|null|Null|NULL");
  static const std::regex kTimestamp(
      "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
      "(?:[Tt]|[ \\t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\\.[0-9]*)?(?:[ "
      "\\t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?");
  if (sv.empty()) return PlainTag::kNull;
  const std::string s(sv);
  const char c = s[0];
  // Resolvers are tried in ruamel's registration order, filtered by the first character.
  if (std::string_view("tTfF").find(c) != std::string_view::npos && std::regex_match(s, kBool))
    return PlainTag::kBool;
  if (std::string_view("-+0123456789.").find(c) != std::string_view::npos && std::regex_match(s, kFloat))
    return PlainTag::kFloat;
  if (std::string_view("-+0123456789").find(c) != std::string_view::npos && std::regex_match(s, kInt))
    return PlainTag::kInt;
  if (s == "<<") return PlainTag::kMerge;
  if (std::string_view("~nN").find(c) != std::string_view::npos && std::regex_match(s, kNull))
    return PlainTag::kNull;
  if (c >= '0' && c <= '9' && std::regex_match(s, kTimestamp)) return PlainTag::kTimestamp;
  if (s == "=") return PlainTag::kValue;
  if (s == "!" || s == "&" || s == "*") return PlainTag::kYaml;
  return PlainTag::kStr;
}

namespace {

constexpr int kBestWidth = 80;
constexpr int kBestIndent = 2;

}  // namespace

std::u32string decode_code_points(std::string_view s) {
  std::u32string out;
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    char32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    bool ok = len > 0 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      const auto cb = static_cast<unsigned char>(s[i + k]);
      ok = (cb & 0xC0) == 0x80;
      cp = (cp << 6) | (cb & 0x3F);
    }
    if (ok) {
      static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    }
    if (!ok) {
      out.push_back(0xDC00 + b);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

void append_code_point(std::string& out, char32_t cp) {
  if (cp >= 0xDC80 && cp <= 0xDCFF) {  // an undecodable byte travels through unchanged
    out += static_cast<char>(cp - 0xDC00);
  } else if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

namespace {

// Code points, so column counting matches Python's len().
std::u32string decode_utf8(std::string_view s) {
  return decode_code_points(s);
}
void append_utf8(std::string& out, char32_t cp) {
  append_code_point(out, cp);
}

bool is_break(char32_t c) {
  return c == U'\n' || c == 0x85 || c == 0x2028 || c == 0x2029;
}
bool is_space_or_break(char32_t c) {
  return c == 0 || c == U' ' || c == U'\t' || c == U'\r' || is_break(c);
}

struct Analysis {
  bool empty = false, multiline = false;
  bool allow_block_plain = true, allow_single_quoted = true, allow_double_quoted = true;
};

struct Flags {
  bool block_indicators = false, line_breaks = false, special = false;
  bool leading_space = false, leading_break = false, trailing_space = false, trailing_break = false;
  bool break_space = false, space_break = false;
};

void scan_character(const std::u32string& s, size_t i, bool preceded_by_ws, bool followed_by_ws, Flags& f) {
  const char32_t ch = s[i];
  if (i == 0) {
    if (std::u32string_view(U"#,[]{}&*!|>'\"%@`").find(ch) != std::u32string_view::npos)
      f.block_indicators = true;
    if ((ch == U'?' || ch == U':') && followed_by_ws) f.block_indicators = true;
    if (ch == U'-' && followed_by_ws) f.block_indicators = true;
  } else {
    if (ch == U':' && followed_by_ws) f.block_indicators = true;
    if (ch == U'#' && preceded_by_ws) f.block_indicators = true;
  }
  if (is_break(ch)) f.line_breaks = true;
  if (!(ch == U'\n' || (ch >= 0x20 && ch <= 0x7E))) {
    const bool printable_unicode = (ch == 0x85 || (ch >= 0xA0 && ch <= 0xD7FF) ||
                                    (ch >= 0xE000 && ch <= 0xFFFD) || (ch >= 0x10000 && ch <= 0x10FFFF)) &&
                                   ch != 0xFEFF;
    if (!printable_unicode) f.special = true;  // allow_unicode is on: printable non-ASCII stays as is
  }
}

// emitter.py analyze_scalar, for block context (DVC never emits flow collections with content).
Analysis analyze(const std::u32string& s) {
  Analysis a;
  if (s.empty()) {
    a.empty = true;
    return a;
  }
  Flags f;
  if (s.rfind(U"---", 0) == 0 || s.rfind(U"...", 0) == 0) f.block_indicators = true;
  bool preceded = true;
  bool followed = s.size() == 1 || is_space_or_break(s[1]);
  bool prev_space = false, prev_break = false;
  for (size_t i = 0; i < s.size(); ++i) {
    scan_character(s, i, preceded, followed, f);
    const char32_t ch = s[i];
    if (ch == U' ') {
      if (i == 0) f.leading_space = true;
      if (i == s.size() - 1) f.trailing_space = true;
      if (prev_break) f.break_space = true;
      prev_space = true;
      prev_break = false;
    } else if (is_break(ch)) {
      if (i == 0) f.leading_break = true;
      if (i == s.size() - 1) f.trailing_break = true;
      if (prev_space) f.space_break = true;
      prev_space = false;
      prev_break = true;
    } else {
      prev_space = prev_break = false;
    }
    preceded = is_space_or_break(ch);
    followed = i + 2 >= s.size() || is_space_or_break(s[i + 2]);
  }
  if (f.leading_space || f.leading_break || f.trailing_space || f.trailing_break) a.allow_block_plain = false;
  if (f.break_space) a.allow_block_plain = a.allow_single_quoted = false;
  if (f.special || f.space_break) a.allow_block_plain = a.allow_single_quoted = false;
  if (f.line_breaks) a.allow_block_plain = false;
  if (f.block_indicators) a.allow_block_plain = false;
  a.multiline = f.line_breaks;
  return a;
}

class Emitter {
 public:
  std::string run(const Json& root) {
    expect_node(root, /*sequence=*/false, /*mapping=*/false, /*simple_key=*/false);
    write_indent();  // expect_document_end
    return out_;
  }

 private:
  // -- structure ------------------------------------------------------------------------------------------
  void expect_node(const Json& v, bool sequence, bool mapping, bool simple_key) {
    sequence_context_ = sequence;
    mapping_context_ = mapping;
    simple_key_context_ = simple_key;
    if (v.is_array() && !v.empty()) return block_sequence(v);
    if (v.is_object() && !v.empty()) return block_mapping(v);
    if (v.is_array() || v.is_object()) return empty_flow(v.is_array() ? "[" : "{", v.is_array() ? "]" : "}");
    increase_indent(/*sequence=*/false, /*indentless=*/false);
    if (v.is_string()) {
      process_string(v.get<std::string>());
    } else {
      process_plain(scalar_text(v));
    }
    pop_indent();
  }

  void block_sequence(const Json& items) {
    const bool indentless = mapping_context_ && !indention_;
    increase_indent(/*sequence=*/true, indentless);
    for (const auto& item : items) {
      write_indent();
      write_indicator("-", true, false, true);
      expect_node(item, /*sequence=*/true, false, false);
    }
    pop_indent();
  }

  void block_mapping(const Json& object) {
    increase_indent(/*sequence=*/false, false);
    for (const auto& [key, value] : object.items()) {
      write_indent();
      if (is_simple_key(key)) {
        expect_node(Json(key), false, /*mapping=*/true, /*simple_key=*/true);
        write_indicator(":", false);
      } else {  // long or multi-line keys take the explicit "? key" / ": value" form
        write_indicator("?", true, false, true);
        expect_node(Json(key), false, /*mapping=*/true, false);
        write_indent();
        write_indicator(":", true, false, true);
      }
      expect_node(value, false, /*mapping=*/true, false);
    }
    pop_indent();
  }

  // emitter.py check_simple_key, for a string key: its length counts the prepared tag ("!!str", 5 characters)
  // even though the tag is never written, so the limit of 128 leaves 122 characters for the key itself.
  static bool is_simple_key(const std::string& key) {
    const std::u32string s = decode_utf8(key);
    return s.size() + 5 < 128 && !analyze(s).multiline;
  }

  void empty_flow(const char* open, const char* close) {
    write_indicator(open, true, true);
    write_indicator(close, false);
  }

  static std::string scalar_text(const Json& v) {
    if (v.is_null()) return "";  // RoundTripRepresenter.represent_none below the root
    if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (std::isnan(d)) return ".nan";
      if (std::isinf(d)) return d > 0 ? ".inf" : "-.inf";
      return python_float_repr(d);  // repr(data).lower(): the repr is lower case already
    }
    return v.dump();
  }

  void increase_indent(bool sequence, bool indentless) {
    indents_.push_back(indent_);
    (void)sequence;  // both indents are 2, so which one applies does not matter here
    if (!indent_) {
      indent_ = 0;
    } else if (!indentless) {
      *indent_ += kBestIndent;
    }
  }
  void pop_indent() {
    indent_ = indents_.back();
    indents_.pop_back();
  }

  // -- scalars ------------------------------------------------------------------------------------------
  void process_plain(const std::string& text) {
    if (sequence_context_) write_indent();
    write_plain(decode_utf8(text), !simple_key_context_);
  }

  void process_string(const std::string& value) {
    const std::u32string s = decode_utf8(value);
    const Analysis a = analyze(s);
    const bool split = !simple_key_context_;
    if (sequence_context_) write_indent();
    const char style = choose_style(s, value, a);
    if (style == '"') {
      write_double_quoted(s, split);
    } else if (style == '\'') {
      write_single_quoted(s, split);
    } else {
      write_plain(s, split);
    }
  }

  char choose_style(const std::u32string& s, const std::string& value, const Analysis& a) const {
    const bool implicit_plain = resolve_plain_tag(value) == PlainTag::kStr;
    if (implicit_plain && !(simple_key_context_ && (a.empty || a.multiline)) && a.allow_block_plain) return 0;
    if (a.allow_double_quoted &&
        (s.find(U'\'') != std::u32string::npos || s.find(U'\n') != std::u32string::npos))
      return '"';
    if (a.allow_single_quoted && !(simple_key_context_ && a.multiline)) return '\'';
    return '"';
  }

  // -- writers (emitter.py) --------------------------------------------------------------------------------
  void write(const std::u32string& s, size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) append_utf8(out_, s[i]);
    column_ += static_cast<int>(to - from);
  }
  void write_ascii(std::string_view s) {
    out_ += s;
    column_ += static_cast<int>(s.size());
  }
  void write_line_break(char32_t br = U'\n') {
    whitespace_ = indention_ = true;
    column_ = 0;
    append_utf8(out_, br);
  }
  void write_indent() {
    const int indent = indent_.value_or(0);
    if (!indention_ || column_ > indent || (column_ == indent && !whitespace_)) write_line_break();
    if (column_ < indent) {
      whitespace_ = true;
      out_ += std::string(indent - column_, ' ');
      column_ = indent;
    }
  }
  void write_indicator(std::string_view indicator, bool need_whitespace, bool whitespace = false,
                       bool indention = false) {
    if (!whitespace_ && need_whitespace) write_ascii(" ");
    write_ascii(indicator);
    whitespace_ = whitespace;
    indention_ = indention_ && indention;
  }
  void write_breaks(const std::u32string& text, size_t start, size_t end) {
    if (text[start] == U'\n') write_line_break();
    for (size_t i = start; i < end; ++i) write_line_break(text[i]);
    write_indent();
  }

  void write_plain(const std::u32string& text, bool split);
  void write_single_quoted(const std::u32string& text, bool split);
  void write_double_quoted(const std::u32string& text, bool split);

  std::string out_;
  int column_ = 0;
  bool whitespace_ = true, indention_ = true;
  bool mapping_context_ = false, sequence_context_ = false, simple_key_context_ = false;
  std::optional<int> indent_;
  std::vector<std::optional<int>> indents_;
};

void Emitter::write_plain(const std::u32string& text, bool split) {
  if (text.empty()) return;
  if (!whitespace_) write_ascii(" ");
  whitespace_ = indention_ = false;
  bool spaces = false, breaks = false;
  size_t start = 0;
  for (size_t end = 0; end <= text.size(); ++end) {
    const bool at_end = end == text.size();
    const char32_t ch = at_end ? 0 : text[end];
    if (spaces) {
      if (at_end || ch != U' ') {
        if (start + 1 == end && column_ > kBestWidth && split) {
          write_indent();
          whitespace_ = indention_ = false;
        } else {
          write(text, start, end);
        }
        start = end;
      }
    } else if (breaks) {
      if (at_end || !is_break(ch)) {
        write_breaks(text, start, end);
        whitespace_ = indention_ = false;
        start = end;
      }
    } else if (at_end || ch == U' ' || is_break(ch)) {
      write(text, start, end);
      start = end;
    }
    if (!at_end) {
      spaces = ch == U' ';
      breaks = is_break(ch);
    }
  }
}

void Emitter::write_single_quoted(const std::u32string& text, bool split) {
  write_indicator("'", true);
  bool spaces = false, breaks = false;
  size_t start = 0;
  for (size_t end = 0; end <= text.size(); ++end) {
    const bool at_end = end == text.size();
    const char32_t ch = at_end ? 0 : text[end];
    if (spaces) {
      if (at_end || ch != U' ') {
        if (start + 1 == end && column_ > kBestWidth && split && start != 0 && end != text.size()) {
          write_indent();
        } else {
          write(text, start, end);
        }
        start = end;
      }
    } else if (breaks) {
      if (at_end || !is_break(ch)) {
        write_breaks(text, start, end);
        start = end;
      }
    } else if (at_end || ch == U' ' || is_break(ch) || ch == U'\'') {
      if (start < end) {
        write(text, start, end);
        start = end;
      }
    }
    if (ch == U'\'' && !at_end) {
      write_ascii("''");
      start = end + 1;
    }
    if (!at_end) {
      spaces = ch == U' ';
      breaks = is_break(ch);
    }
  }
  write_indicator("'", false);
}

std::string double_quote_escape(char32_t ch) {
  switch (ch) {
    case 0:
      return "\\0";
    case 0x07:
      return "\\a";
    case 0x08:
      return "\\b";
    case 0x09:
      return "\\t";
    case 0x0A:
      return "\\n";
    case 0x0B:
      return "\\v";
    case 0x0C:
      return "\\f";
    case 0x0D:
      return "\\r";
    case 0x1B:
      return "\\e";
    case U'"':
      return "\\\"";
    case U'\\':
      return "\\\\";
    case 0x85:
      return "\\N";
    case 0xA0:
      return "\\_";
    case 0x2028:
      return "\\L";
    case 0x2029:
      return "\\P";
    default:
      break;
  }
  if (ch <= 0xFF) return fmt::format("\\x{:02X}", static_cast<unsigned>(ch));
  if (ch <= 0xFFFF) return fmt::format("\\u{:04X}", static_cast<unsigned>(ch));
  return fmt::format("\\U{:08X}", static_cast<unsigned>(ch));
}

void Emitter::write_double_quoted(const std::u32string& text, bool split) {
  write_indicator("\"", true);
  size_t start = 0;
  for (size_t end = 0; end <= text.size(); ++end) {
    const bool at_end = end == text.size();
    const char32_t ch = at_end ? 0 : text[end];
    const bool printable =
        (ch >= 0x20 && ch <= 0x7E) || (ch >= 0xA0 && ch <= 0xD7FF) || (ch >= 0xE000 && ch <= 0xFFFD);
    if (at_end || ch == U'"' || ch == U'\\' || ch == 0x85 || ch == 0x2028 || ch == 0x2029 || ch == 0xFEFF ||
        !printable) {
      if (start < end) {
        write(text, start, end);
        start = end;
      }
      if (!at_end) {
        write_ascii(double_quote_escape(ch));
        start = end + 1;
      }
    }
    if (end > 0 && end + 1 < text.size() && (ch == U' ' || start >= end) &&
        column_ + static_cast<int>(end - start) > kBestWidth && split) {
      if (start < end) {
        write(text, start, end);
        start = end;
      }
      write_ascii("\\");
      write_indent();
      whitespace_ = indention_ = false;
      if (text[start] == U' ') write_ascii("\\");
    }
  }
  write_indicator("\"", false);
}

}  // namespace

std::string dump_yaml(const Json& root) {
  return Emitter().run(root);
}

}  // namespace vigil::pipeline
