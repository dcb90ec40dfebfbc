#pragma once
/// TensorBoard event files written without TensorFlow or protobuf: TFRecord framing around hand-encoded
/// `tensorflow.Event` messages, byte-compatible with what `torch.utils.tensorboard.SummaryWriter` writes for
/// scalars, so `tensorboard --logdir runs/` shows vigil runs beside Python ones.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace vigil::train {

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses. crc32c("123456789") ==
/// 0xE3069283.
uint32_t crc32c(std::string_view data);

/// The TFRecord mask applied to stored CRCs: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t masked_crc32c(std::string_view data);

/// Frames one record: uint64 length, masked CRC of the length, data, masked CRC of the data (little endian).
std::string tfrecord_frame(std::string_view data);

/// Writes scalars to `<log_dir>/events.out.tfevents.<time>.<host>.<pid>.<n><suffix>`.
///
/// Thread-safe. Records are buffered and flushed every `flush_secs` by a background thread, on flush() and on
/// destruction, so a killed run loses at most the records written since the last flush (a record cut in half
/// by a kill is the last one in the file; TensorBoard's reader stops there).
class EventWriter {
 public:
  /// Creates `log_dir` if needed and writes the file-version event. Throws IoError naming the file.
  explicit EventWriter(const std::filesystem::path& log_dir, const std::string& suffix = "",
                       double flush_secs = 10.0);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  /// Appends `tag` = `value` (stored as float, like TensorBoard's simple_value) at `step`.
  /// `wall_time` is seconds since the epoch; negative means now.
  void add_scalar(const std::string& tag, double value, int64_t step, double wall_time = -1);
  /// Pushes everything written so far to the operating system. Throws IoError when writing failed.
  void flush();
  /// The event file being written.
  const std::filesystem::path& path() const { return path_; }

 private:
  void write_event(std::string_view event);  // caller holds mu_
  void flush_locked();                       // caller holds mu_
  void flush_loop();

  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool dirty_ = false;
  bool failed_ = false;
  std::chrono::duration<double> flush_interval_;
  std::thread flusher_;
};

}  // namespace vigil::train
