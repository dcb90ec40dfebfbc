// Reading runs: resolving references, the MLflow-style search (conditions on attributes, params, metrics and
// tags; ordering; paging), metric histories, deletion.

#include <fmt/format.h>

#include <cctype>
#include <cmath>

#include "store_impl.h"
#include "vigil/core/error.h"
#include "vigil/core/strings.h"

namespace vigil::store {

namespace detail {

namespace {

constexpr const char* kConditionHelp =
    "expected conditions like `metrics.val_accuracy > 0.9`, `params.optimizer.lr = 0.001`, "
    "`tags.note = 'x'`, `status = finished`, `name LIKE 'mask%'`, `kind = train`, `experiment = guns`, "
    "`dataset = <id>`; quote keys holding spaces or operators with backticks (metrics.`metrics/mAP50(B)`)";

struct Token {
  std::string field;  ///< "metrics", "params", "tags" or an attribute name
  std::string key;    ///< for metrics/params/tags
  std::string op;
  std::string value;
  bool quoted = false;  ///< the value was a quoted string
};

/// Reads `metrics.key`, `params.`key``, `status`, ... from the front of `s`.
std::pair<std::string, std::string> read_field(std::string_view& s, const std::string& whole) {
  size_t i = 0;
  while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_')) ++i;
  std::string field = to_lower(s.substr(0, i));
  s.remove_prefix(i);
  if (field != "metrics" && field != "params" && field != "tags" && field != "metric" && field != "param" &&
      field != "tag") {
    if (field.empty()) throw InvalidArgument(fmt::format("{}; got `{}`", kConditionHelp, whole));
    return {field, ""};
  }
  if (field.back() != 's') field += 's';
  if (s.empty() || s[0] != '.') throw InvalidArgument(fmt::format("{}; got `{}`", kConditionHelp, whole));
  s.remove_prefix(1);
  std::string key;
  if (!s.empty() && (s[0] == '`' || s[0] == '"')) {
    const char q = s[0];
    const auto end = s.find(q, 1);
    if (end == std::string_view::npos)
      throw InvalidArgument(fmt::format("unclosed {} in the condition `{}`", q, whole));
    key = std::string(s.substr(1, end - 1));
    s.remove_prefix(end + 1);
  } else {
    size_t j = 0;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j])) &&
           std::string_view("=!<>").find(s[j]) == std::string_view::npos)
      ++j;
    key = std::string(s.substr(0, j));
    s.remove_prefix(j);
  }
  if (key.empty()) throw InvalidArgument(fmt::format("expected a key after {}., got `{}`", field, whole));
  return {field, key};
}

Token parse_condition(const std::string& text) {
  std::string_view s = trim(text);
  Token t;
  std::tie(t.field, t.key) = read_field(s, text);
  s = trim(s);
  for (const char* op : {"!=", "<=", ">=", "=", "<", ">"}) {
    if (starts_with(s, op)) {
      t.op = op;
      break;
    }
  }
  if (t.op.empty()) {
    const auto words = split_ws(s);
    if (!words.empty() && (to_lower(words[0]) == "like" || to_lower(words[0]) == "ilike"))
      t.op = to_lower(words[0]);
  }
  if (t.op.empty())
    throw InvalidArgument(fmt::format("expected an operator (=, !=, <, <=, >, >=, LIKE) in `{}`", text));
  s = trim(s.substr(t.op.size()));
  if (!s.empty() && (s[0] == '\'' || s[0] == '"')) {
    if (s.size() < 2 || s.back() != s[0])
      throw InvalidArgument(fmt::format("unclosed quote in the value of `{}`", text));
    t.value = std::string(s.substr(1, s.size() - 2));
    t.quoted = true;
  } else {
    t.value = std::string(s);
  }
  if (t.value.empty() && !t.quoted) throw InvalidArgument(fmt::format("expected a value in `{}`", text));
  return t;
}

/// Splits "a and b AND c" outside quotes.
std::vector<std::string> split_and(const std::string& text) {
  std::vector<std::string> parts;
  std::string cur;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"' || c == '`') {
      quote = c;
    } else if (std::isspace(static_cast<unsigned char>(c)) && i + 5 <= text.size() &&
               to_lower(text.substr(i + 1, 3)) == "and" &&
               std::isspace(static_cast<unsigned char>(text[i + 4]))) {
      parts.push_back(cur);
      cur.clear();
      i += 4;
      continue;
    }
    cur += c;
  }
  parts.push_back(cur);
  return parts;
}

std::string sql_op(const std::string& op, const Dialect& d) {
  if (op == "like" || op == "ilike") return d.like_nocase;  // LIKE ignores ASCII case, as in SQLite
  return op;
}

/// The SQL expression an attribute name stands for.
std::optional<std::string> attribute_column(const std::string& name) {
  static const std::map<std::string, std::string> columns = {{"id", "r.id"},
                                                             {"run_id", "r.id"},
                                                             {"name", "r.name"},
                                                             {"run_name", "r.name"},
                                                             {"status", "r.status"},
                                                             {"kind", "r.kind"},
                                                             {"experiment", "e.name"},
                                                             {"dataset", "r.dataset_id"},
                                                             {"dataset_id", "r.dataset_id"},
                                                             {"parent", "r.parent_id"},
                                                             {"host", "r.host"},
                                                             {"commit", "r.code_commit"},
                                                             {"start_time", "r.start_ms"},
                                                             {"end_time", "r.end_ms"}};
  auto it = columns.find(name);
  if (it == columns.end()) return std::nullopt;
  return it->second;
}

std::string condition_sql(const Token& t, std::vector<SqlValue>& values, const std::string& text,
                          const Dialect& d) {
  const std::string op = sql_op(t.op, d);
  const bool textual = t.op == "like" || t.op == "ilike";
  const auto number = parse_double(t.value);
  if (t.field == "metrics") {
    VIGIL_CHECK(!textual && number && !t.quoted, "expected a number to compare metrics.{} with, got `{}`",
                t.key, text);
    values.push_back(t.key);
    values.push_back(*number);
    return fmt::format(
        "EXISTS(SELECT 1 FROM latest_metrics m WHERE m.run_id = r.id AND m.key = ? AND m.value {} ?)", op);
  }
  if (t.field == "params" || t.field == "tags") {
    values.push_back(t.key);
    // A numeric value compares numerically (lr < 0.01), anything else as text.
    if (number && !t.quoted && !textual) {
      values.push_back(*number);
      return fmt::format("EXISTS(SELECT 1 FROM {} p WHERE p.run_id = r.id AND p.key = ? AND {} AND {} {} ?)",
                         t.field, fmt::format(fmt::runtime(d.is_number), "p.value"),
                         fmt::format(fmt::runtime(d.to_number), "p.value"), op);
    }
    values.push_back(t.value);
    return fmt::format("EXISTS(SELECT 1 FROM {} p WHERE p.run_id = r.id AND p.key = ? AND p.value {} ?)",
                       t.field, op);
  }
  const auto column = attribute_column(t.field);
  if (!column)
    throw InvalidArgument(fmt::format("unknown field '{}' in `{}`; {}", t.field, text, kConditionHelp));
  if (t.field == "status") {
    VIGIL_CHECK(op == "=" || op == "!=", "expected = or != with status, got `{}`", text);
    values.push_back(std::string(to_string(parse_run_status(t.value))));
  } else if (t.field == "dataset" && op == "=") {
    values.push_back(t.value + "%");  // a dataset id prefix, as `vigil data list` shows it
    return fmt::format("{} {} ?", *column, d.like_nocase);
  } else if (t.field == "start_time" || t.field == "end_time") {
    VIGIL_CHECK(number.has_value(), "expected Unix milliseconds for {}, got `{}`", t.field, text);
    values.push_back(static_cast<int64_t>(*number));
  } else {
    values.push_back(t.value);
  }
  return fmt::format("{} {} ?", *column, op);
}

std::string order_sql(const std::string& order_by, std::vector<SqlValue>& values, const Dialect& d) {
  if (trim(order_by).empty()) return "ORDER BY r.start_ms DESC, r.id";
  std::string dir = "ASC";
  std::string_view s = trim(order_by);
  const std::string text(s);
  auto [field, key] = read_field(s, text);
  s = trim(s);
  if (!s.empty()) {
    const std::string rest = to_lower(s);
    VIGIL_CHECK(rest == "asc" || rest == "desc", "expected `FIELD [ASC|DESC]` to order by, got `{}`",
                order_by);
    dir = rest == "desc" ? "DESC" : "ASC";
  }
  if (field == "metrics") {
    values.push_back(key);
    return fmt::format(
        "ORDER BY (SELECT value FROM latest_metrics m WHERE m.run_id = r.id AND m.key = ?) {} NULLS LAST, "
        "r.start_ms DESC, r.id",
        dir);
  }
  if (field == "params" || field == "tags") {
    values.push_back(key);
    values.push_back(key);
    return fmt::format(
        "ORDER BY (SELECT {2} FROM {0} p WHERE p.run_id = r.id AND p.key = ?) {1} NULLS LAST, "
        "(SELECT value FROM {0} p WHERE p.run_id = r.id AND p.key = ?) {1}, r.start_ms DESC, r.id",
        field, dir, fmt::format(fmt::runtime(d.to_number), "value"));
  }
  const auto column = attribute_column(field);
  if (!column)
    throw InvalidArgument(
        fmt::format("expected to order by start_time, end_time, name, status, kind, experiment, metrics.KEY "
                    "or params.KEY, "
                    "got `{}`",
                    order_by));
  return fmt::format("ORDER BY {} {}, r.id", *column, dir);
}

}  // namespace

RunQuery build_run_query(const RunFilter& filter, const Dialect& d) {
  RunQuery q;
  std::vector<std::string> where;
  if (!filter.experiment.empty()) {
    where.push_back("e.name = ?");
    q.where_values.push_back(filter.experiment);
  }
  if (filter.status) {
    where.push_back("r.status = ?");
    q.where_values.push_back(std::string(to_string(*filter.status)));
  }
  for (const auto& c : filter.conditions) {
    for (const auto& part : split_and(c)) {
      if (trim(part).empty()) throw InvalidArgument(fmt::format("{}; got `{}`", kConditionHelp, c));
      where.push_back(condition_sql(parse_condition(part), q.where_values, part, d));
    }
  }
  if (!where.empty()) q.where = "WHERE " + join(where, " AND ");
  q.order_by = order_sql(filter.order_by, q.order_values, d);
  return q;
}

}  // namespace detail

void RunFilter::validate() const {
  VIGIL_CHECK(limit >= 1 && limit <= 10000, "expected a page size in 1..10000, got {}", limit);
  VIGIL_CHECK(offset >= 0, "expected a page offset >= 0, got {}", offset);
  detail::build_run_query(*this, detail::kSqliteDialect);  // only parses: either dialect would do
}

RunInfo Store::Impl::read_run_info(detail::Statement& s) const {
  RunInfo r;
  r.id = s.text_at(0);
  r.name = s.text_at(1);
  r.experiment = s.text_at(2);
  r.kind = s.text_at(3);
  r.status = parse_run_status(s.text_at(4));
  r.start_ms = s.int_at(5);
  r.end_ms = s.int_at(6);
  r.dataset_id = s.text_at(7);
  r.parent_id = s.text_at(8);
  r.run_dir = s.text_at(9);
  r.code.commit = s.text_at(10);
  r.code.dirty = s.int_at(11) != 0;
  r.code.vigil = s.text_at(12);
  r.host = s.text_at(13);
  r.pid = s.int_at(14);
  return r;
}

RunRecord Store::Impl::load_run(const std::string& id) {
  RunRecord rec;
  auto s = db->prepare(
      fmt::format("SELECT {} FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.id = ?",
                  detail::kRunColumns));
  s.bind(1, id);
  if (!s.step()) throw NotFound(fmt::format("no run with id {}", id));
  rec.info = read_run_info(s);
  auto p = db->prepare("SELECT key, value FROM params WHERE run_id = ?");
  p.bind(1, id);
  while (p.step()) rec.params[p.text_at(0)] = p.text_at(1);
  auto m = db->prepare("SELECT key, value FROM latest_metrics WHERE run_id = ?");
  m.bind(1, id);
  while (m.step()) rec.latest_metrics[m.text_at(0)] = m.double_at(1);
  auto t = db->prepare("SELECT key, value FROM tags WHERE run_id = ?");
  t.bind(1, id);
  while (t.step()) rec.tags[t.text_at(0)] = t.text_at(1);
  auto a = db->prepare("SELECT path, kind, sha256, size FROM artifacts WHERE run_id = ? ORDER BY path");
  a.bind(1, id);
  while (a.step()) rec.artifacts.push_back({a.text_at(0), a.text_at(1), a.text_at(2), a.int_at(3)});
  return rec;
}

std::string Store::Impl::resolve_run_locked(const std::string& ref) {
  VIGIL_CHECK(!ref.empty(), "expected a run (id, id prefix, name or 'last'), got nothing");
  // Runs started in the same millisecond: the one inserted last is the newest.
  const std::string newest =
      fmt::format("ORDER BY start_ms DESC, {} DESC LIMIT 1", db->dialect().insertion_order);
  if (ref == "last" || starts_with(ref, "last:")) {
    const std::string kind = ref == "last" ? "" : ref.substr(5);
    auto s = db->prepare(kind.empty() ? "SELECT id FROM runs " + newest
                                      : "SELECT id FROM runs WHERE kind = ? " + newest);
    if (!kind.empty()) s.bind(1, kind);
    if (!s.step())
      throw NotFound(kind.empty() ? "no runs recorded yet" : fmt::format("no {} runs recorded yet", kind));
    return s.text_at(0);
  }
  {
    auto s = db->prepare("SELECT id FROM runs WHERE id = ?");
    s.bind(1, ref);
    if (s.step()) return s.text_at(0);
  }
  {
    auto s = db->prepare("SELECT id FROM runs WHERE name = ? " + newest);
    s.bind(1, ref);
    if (s.step()) return s.text_at(0);
  }
  const bool hex = ref.size() >= 4 && ref.find_first_not_of("0123456789abcdef") == std::string::npos;
  if (hex) {
    auto s = db->prepare("SELECT id FROM runs WHERE id LIKE ? LIMIT 2");
    s.bind(1, ref + "%");
    std::vector<std::string> ids;
    while (s.step()) ids.push_back(s.text_at(0));
    if (ids.size() == 1) return ids[0];
    if (ids.size() > 1)
      throw InvalidArgument(fmt::format("run id prefix '{}' is ambiguous: give more digits", ref));
  }
  std::vector<std::string> names;
  auto s = db->prepare("SELECT DISTINCT name FROM runs");
  while (s.step()) names.push_back(s.text_at(0));
  const auto close = closest_match(ref, names);
  throw NotFound(fmt::format("no run '{}' (by id, id prefix or name){}", ref,
                             close ? fmt::format("; did you mean '{}'?", *close) : std::string()));
}

RunRecord Store::get_run(const std::string& ref) {
  std::lock_guard lock(impl_->mutex);
  return impl_->load_run(impl_->resolve_run_locked(ref));
}

std::string Store::resolve_run(const std::string& ref) {
  std::lock_guard lock(impl_->mutex);
  return impl_->resolve_run_locked(ref);
}

RunPage Store::search_runs(const RunFilter& filter) {
  filter.validate();
  std::lock_guard lock(impl_->mutex);
  const auto q = detail::build_run_query(filter, impl_->db->dialect());
  auto& db = *impl_->db;
  RunPage page;
  const std::string from = "FROM runs r JOIN experiments e ON e.id = r.experiment_id " + q.where;
  {
    auto s = db.prepare("SELECT count(*) " + from);
    s.bind_all(q.where_values);
    if (s.step()) page.total = s.int_at(0);
  }
  auto values = q.where_values;
  values.insert(values.end(), q.order_values.begin(), q.order_values.end());
  values.push_back(static_cast<int64_t>(filter.limit));
  values.push_back(static_cast<int64_t>(filter.offset));
  std::vector<std::string> ids;
  auto s = db.prepare(fmt::format("SELECT r.id {} {} LIMIT ? OFFSET ?", from, q.order_by));
  s.bind_all(values);
  while (s.step()) ids.push_back(s.text_at(0));
  for (const auto& id : ids) page.runs.push_back(impl_->load_run(id));
  return page;
}

std::vector<MetricPoint> Store::metric_history(const std::string& run_id, const std::string& key) {
  std::lock_guard lock(impl_->mutex);
  auto s = impl_->db->prepare(
      fmt::format("SELECT key, value, step, timestamp_ms FROM metrics WHERE run_id = ? AND key = ? ORDER BY "
                  "step, timestamp_ms, {}",
                  impl_->db->dialect().insertion_order));
  s.bind_all({run_id, key});
  std::vector<MetricPoint> points;
  while (s.step()) points.push_back({s.text_at(0), s.double_at(1), s.int_at(2), s.int_at(3)});
  return points;
}

std::vector<std::string> Store::metric_keys(const std::string& run_id) {
  std::lock_guard lock(impl_->mutex);
  auto s = impl_->db->prepare("SELECT key FROM latest_metrics WHERE run_id = ? ORDER BY key");
  s.bind(1, run_id);
  std::vector<std::string> keys;
  while (s.step()) keys.push_back(s.text_at(0));
  return keys;
}

std::vector<std::string> Store::experiments() {
  std::lock_guard lock(impl_->mutex);
  auto s = impl_->db->prepare("SELECT name FROM experiments ORDER BY name");
  std::vector<std::string> names;
  while (s.step()) names.push_back(s.text_at(0));
  return names;
}

std::string Store::delete_run(const std::string& ref) {
  std::lock_guard lock(impl_->mutex);
  const std::string id = impl_->resolve_run_locked(ref);
  impl_->db->write([&] { impl_->db->prepare("DELETE FROM runs WHERE id = ?").bind(1, id).run(); });
  return id;
}

}  // namespace vigil::store
