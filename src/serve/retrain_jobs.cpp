#include "vigil/serve/retrain_jobs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "vigil/core/clock.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"

namespace vigil::serve {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr size_t kLogTail = 8192;
constexpr size_t kProgressRows = 200;

std::string tail_of(const fs::path& file, size_t bytes) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return "";
  const std::string all = read_file(file);
  return all.size() <= bytes ? all : all.substr(all.size() - bytes);
}

json read_json_or_null(const fs::path& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return nullptr;
  json j = json::parse(read_file(file), nullptr, false);
  return j.is_discarded() ? json(nullptr) : j;
}

/// The training run's results.csv (one row per epoch: losses, metrics, learning rate) as objects.
json progress_of(const fs::path& results_csv) {
  json rows = json::array();
  std::error_code ec;
  if (!fs::is_regular_file(results_csv, ec)) return rows;
  const std::vector<std::string> lines = split(read_file(results_csv), '\n');
  if (lines.empty()) return rows;
  std::vector<std::string> header;
  for (const auto& h : split(lines[0], ',')) header.emplace_back(trim(h));
  const size_t first = lines.size() > kProgressRows + 1 ? lines.size() - kProgressRows : 1;
  for (size_t i = first; i < lines.size(); ++i) {
    if (trim(lines[i]).empty()) continue;
    const std::vector<std::string> cells = split(lines[i], ',');
    json row = json::object();
    for (size_t k = 0; k < header.size() && k < cells.size(); ++k) {
      const std::string cell(trim(cells[k]));
      const auto v = parse_double(cell);
      row[header[k]] = v ? json(*v) : json(cell);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

RetrainJobs::RetrainJobs(RetrainJobsOptions options, std::function<void(const json&)> on_finished)
    : options_(std::move(options)), on_finished_(std::move(on_finished)) {
  VIGIL_CHECK(fs::is_regular_file(options_.config),
              "retrain_config: expected a training config file, got '{}'", options_.config);
  VIGIL_CHECK(
      !options_.model.empty(),
      "retrain_model: expected the registered model name challengers are added to (serve a registered "
      "model, NAME@alias, or set retrain_model)");
  supervisor_ = std::thread([this] { supervise(); });
}

RetrainJobs::~RetrainJobs() {
  pid_t pid = -1;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    pid = running_pid_;
    if (pid > 0) cancelled_ = true;
  }
  wake_.notify_all();
  if (pid > 0) {
    ::kill(-pid, SIGTERM);  // the whole group: `vigil retrain` and the step it runs
    for (int i = 0; i < 100 && ::kill(pid, 0) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::kill(-pid, SIGKILL);
  }
  if (supervisor_.joinable()) supervisor_.join();
}

fs::path RetrainJobs::job_dir(const std::string& id) const {
  return options_.workspace / "jobs" / id;
}

std::string RetrainJobs::start(const RetrainRequest& request) {
  std::lock_guard lock(mutex_);
  if (queue_.size() >= options_.max_queued)
    throw Unavailable(
        fmt::format("{} retrain jobs are waiting already (at most {})", queue_.size(), options_.max_queued));
  std::string stamp;
  for (char c : utc_now().substr(0, 19))
    if (std::isdigit(static_cast<unsigned char>(c))) stamp += c;
  std::string id = "retrain-" + stamp;
  for (int k = 2; fs::exists(job_dir(id)); ++k) id = fmt::format("retrain-{}-{}", stamp, k);
  ensure_dir(job_dir(id));
  const json job = {
      {"id", id},
      {"state", "queued"},
      {"queued", utc_now()},
      {"request", {{"set", request.sets}, {"min_delta", request.min_delta}, {"metric", request.metric}}},
      {"model", options_.model},
      {"alias", options_.alias}};
  write_file_atomic(job_dir(id) / "job.json", job.dump(2) + "\n");
  queue_.push_back({id, request});
  wake_.notify_all();
  return id;
}

pid_t RetrainJobs::launch(const Queued& q) {
  const fs::path dir = job_dir(q.id);
  std::vector<std::string> args = {"vigil", "--workspace", options_.workspace.string()};
  if (options_.threads > 0) {
    args.push_back("--threads");
    args.push_back(std::to_string(options_.threads));
  }
  for (const std::string& a :
       {std::string("retrain"), std::string("--config"), options_.config, std::string("--model"),
        options_.model, std::string("--alias"), options_.alias, std::string("--run"), q.id, std::string("-o"),
        dir.string(), std::string("--metric"), q.request.metric, std::string("--min-delta"),
        fmt::format("{}", q.request.min_delta)})
    args.push_back(a);
  for (const auto& s : q.request.sets) {
    args.push_back("--set");
    args.push_back(s);
  }
  const std::string log = (dir / "log.txt").string();
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // posix_spawn, not fork(): fork() runs the pthread_atfork handlers, and OpenBLAS's shuts its thread pool
  // down in the parent, which deadlocks an inference worker that is inside a BLAS call at that moment (seen
  // as a /v1/predict that never returns and a reload that never finishes when a job starts under traffic,
  // bench/retrain_loop.sh). glibc's posix_spawn clones with CLONE_VFORK and runs no atfork handlers.
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group: a cancel signals `vigil retrain` and its steps
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, "/proc/self/exe", &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw IoError(fmt::format("cannot start retrain job {}: {}", q.id, std::strerror(rc)));
  json job = read_json_or_null(dir / "job.json");
  if (!job.is_object()) job = {{"id", q.id}};
  job["state"] = "running";
  job["started"] = utc_now();
  job["pid"] = pid;
  write_file_atomic(dir / "job.json", job.dump(2) + "\n");
  spdlog::info("retrain: job {} started (pid {})", q.id, pid);
  return pid;
}

void RetrainJobs::supervise() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) break;
    const Queued next = queue_.front();
    queue_.pop_front();
    pid_t pid = -1;
    try {
      pid = launch(next);
    } catch (const std::exception& e) {
      spdlog::warn("retrain: {}", e.what());
      lock.unlock();
      finish(next.id, 127 << 8, false);
      lock.lock();
      continue;
    }
    running_id_ = next.id;
    running_pid_ = pid;
    cancelled_ = false;
    lock.unlock();
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    lock.lock();
    const bool cancelled = cancelled_;
    running_pid_ = -1;
    running_id_.clear();
    lock.unlock();
    finish(next.id, status, cancelled);
    lock.lock();
  }
  // Jobs still waiting at shutdown stay "queued" on disk; they are not started by a later server.
}

void RetrainJobs::finish(const std::string& id, int status, bool cancelled) {
  const fs::path dir = job_dir(id);
  json job = read_json_or_null(dir / "job.json");
  if (!job.is_object()) job = {{"id", id}};
  const json result = read_json_or_null(dir / "result.json");
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::string state = result.is_object() ? result.value("state", "failed") : "failed";
  if (cancelled) state = "cancelled";
  if (code != 0 && state != "cancelled") state = "failed";
  job["state"] = state;
  job["exit_code"] = code;
  job["finished"] = utc_now();
  job.erase("pid");
  write_file_atomic(dir / "job.json", job.dump(2) + "\n");
  spdlog::info("retrain: job {} {} (exit {})", id, state, code);
  if (on_finished_ && result.is_object() && state != "cancelled") {
    try {
      on_finished_(result);
    } catch (const std::exception& e) {
      spdlog::warn("retrain: after job {}: {}", id, e.what());
    }
  }
}

json RetrainJobs::read_job(const fs::path& dir) const {
  json job = read_json_or_null(dir / "job.json");
  if (!job.is_object()) return nullptr;
  const json result = read_json_or_null(dir / "result.json");
  if (result.is_object()) {
    for (const char* key : {"challenger", "champion", "metric", "reason", "error", "run"})
      if (result.contains(key)) job[key] = result[key];
  }
  job.erase("pid");
  return job;
}

json RetrainJobs::list() const {
  json out = json::array();
  const fs::path root = options_.workspace / "jobs";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root, ec))
    if (e.is_directory() && fs::exists(e.path() / "job.json")) dirs.push_back(e.path());
  std::sort(dirs.rbegin(), dirs.rend());  // ids carry their queueing time: newest first
  for (const auto& d : dirs) {
    json j = read_job(d);
    if (j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

json RetrainJobs::get(const std::string& id) const {
  json j = id.find('/') == std::string::npos && id.find("..") == std::string::npos ? read_job(job_dir(id))
                                                                                   : json(nullptr);
  if (!j.is_object()) throw NotFound(fmt::format("no retrain job '{}'", id));
  j["log_tail"] = tail_of(job_dir(id) / "log.txt", kLogTail);
  j["progress"] = progress_of(options_.workspace / "runs" / id / "results.csv");
  return j;
}

void RetrainJobs::cancel(const std::string& id) {
  std::lock_guard lock(mutex_);
  if (running_id_ == id) {
    cancelled_ = true;
    ::kill(-running_pid_, SIGTERM);
    return;
  }
  const auto it = std::find_if(queue_.begin(), queue_.end(), [&](const Queued& q) { return q.id == id; });
  if (it != queue_.end()) {
    queue_.erase(it);
    json job = read_json_or_null(job_dir(id) / "job.json");
    job["state"] = "cancelled";
    job["finished"] = utc_now();
    write_file_atomic(job_dir(id) / "job.json", job.dump(2) + "\n");
    return;
  }
  get(id);  // NotFound for an unknown id
  throw InvalidArgument(
      fmt::format("retrain job '{}' has ended; only running or queued jobs can be cancelled", id));
}

}  // namespace vigil::serve
