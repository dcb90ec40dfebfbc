#pragma once
/// Retraining started from the API (POST /v1/retrain): each job is `vigil retrain` (champion/challenger, see
/// apps/vigil/cmd_retrain.cpp) run as a child process of the server, in its own process group: isolated (its
/// memory and threads go with it), cancellable (SIGTERM to the group), and never blocking a handler. One job
/// runs at a time; up to `max_queued` more wait in order. A job's folder <workspace>/jobs/<id>/ holds
/// job.json (request, pid, state), log.txt (the child's progress) and result.json (its decision); the list
/// survives restarts because it is read from those folders.

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vigil::serve {

struct RetrainRequest {
  std::vector<std::string> sets;  ///< training overrides (key=value), from the request's allowed fields
  double min_delta = 0;
  std::string metric = "auto";
};

struct RetrainJobsOptions {
  std::filesystem::path workspace;
  std::string config;  ///< the training config every job starts from (the operator's, not the client's)
  std::string model;   ///< registered model name challengers are added to
  std::string alias = "production";
  int threads = 0;        ///< LibTorch threads of the job (0 = every core)
  size_t max_queued = 8;  ///< jobs waiting behind the running one, at most
};

class RetrainJobs {
 public:
  /// `on_finished(result)` runs on the job's reaper thread when a job ends (the server reloads a promoted
  /// model).
  RetrainJobs(RetrainJobsOptions options, std::function<void(const nlohmann::json&)> on_finished);
  /// Cancels a running job (SIGTERM, then SIGKILL after 10 s) and waits for it.
  ~RetrainJobs();
  RetrainJobs(const RetrainJobs&) = delete;
  RetrainJobs& operator=(const RetrainJobs&) = delete;

  /// Queues a job (it starts when the one before it ends); returns its id. Unavailable when the queue is
  /// full.
  std::string start(const RetrainRequest& request);
  /// Every job, newest first: {id, state, started, finished, result...}.
  nlohmann::json list() const;
  /// One job with the tail of its log and its training progress (the run's results.csv rows); NotFound naming
  /// the id.
  nlohmann::json get(const std::string& id) const;
  /// Cancels a running or queued job; InvalidArgument when it has ended, NotFound when unknown.
  void cancel(const std::string& id);
  const RetrainJobsOptions& options() const { return options_; }

 private:
  struct Queued {
    std::string id;
    RetrainRequest request;
  };
  void supervise();
  pid_t launch(const Queued& job);
  void finish(const std::string& id, int status, bool cancelled);
  nlohmann::json read_job(const std::filesystem::path& dir) const;
  std::filesystem::path job_dir(const std::string& id) const;

  RetrainJobsOptions options_;
  std::function<void(const nlohmann::json&)> on_finished_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Queued> queue_;
  std::string running_id_;
  pid_t running_pid_ = -1;
  bool cancelled_ = false;  ///< the running job was cancelled
  bool stopping_ = false;
  std::thread supervisor_;
};

}  // namespace vigil::serve
