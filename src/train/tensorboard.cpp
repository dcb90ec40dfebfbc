#include "vigil/train/tensorboard.h"

#include <unistd.h>

#include <array>
#include <atomic>
#include <cstring>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"

namespace vigil::train {
namespace {

constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xffu));
}

// Protocol buffer wire format, just the pieces an Event with scalar summaries needs.
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_key(std::string& out, uint32_t field, WireType type) {
  put_varint(out, (field << 3) | type);
}
void put_bytes(std::string& out, uint32_t field, std::string_view bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes);
}
void put_double(std::string& out, uint32_t field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_key(out, field, kFixed64);
  put_le(out, bits, 8);
}
void put_float(std::string& out, uint32_t field, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_key(out, field, kFixed32);
  put_le(out, bits, 4);
}

// tensorflow/core/util/event.proto and framework/summary.proto field numbers.
constexpr uint32_t kEventWallTime = 1, kEventStep = 2, kEventFileVersion = 3, kEventSummary = 5;
constexpr uint32_t kSummaryValue = 1;
constexpr uint32_t kValueTag = 1, kValueSimpleValue = 2;

std::string encode_event_header(double wall_time, int64_t step) {
  std::string event;
  put_double(event, kEventWallTime, wall_time);
  // int64 is a varint of the two's complement, so a negative step takes ten bytes, as protobuf does.
  if (step != 0) {
    put_key(event, kEventStep, kVarint);
    put_varint(event, static_cast<uint64_t>(step));
  }
  return event;
}

std::string encode_scalar_event(const std::string& tag, double value, int64_t step, double wall_time) {
  std::string summary_value;
  put_bytes(summary_value, kValueTag, tag);
  put_float(summary_value, kValueSimpleValue, static_cast<float>(value));
  std::string summary;
  put_bytes(summary, kSummaryValue, summary_value);
  std::string event = encode_event_header(wall_time, step);
  put_bytes(event, kEventSummary, summary);
  return event;
}

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  std::array<char, 256> buf{};
  if (gethostname(buf.data(), buf.size() - 1) != 0) return "localhost";
  return buf.data();
}

}  // namespace

uint32_t crc32c(std::string_view data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char b : data) crc = kCrc32cTable[(crc ^ b) & 0xffu] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(std::string_view data) {
  const uint32_t crc = crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string tfrecord_frame(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  put_le(out, data.size(), 8);
  put_le(out, masked_crc32c(std::string_view(out.data(), 8)), 4);
  out.append(data);
  put_le(out, masked_crc32c(data), 4);
  return out;
}

EventWriter::EventWriter(const std::filesystem::path& log_dir, const std::string& suffix, double flush_secs)
    : flush_interval_(flush_secs) {
  VIGIL_CHECK(flush_secs > 0, "expected flush_secs > 0, got {}", flush_secs);
  ensure_dir(log_dir);
  // The counter keeps two writers opened by one process in the same second apart (SummaryWriter's global
  // uid).
  static std::atomic<int> counter{0};
  const double wall_time = now_seconds();
  path_ = log_dir / fmt::format("events.out.tfevents.{:010d}.{}.{}.{}{}", static_cast<int64_t>(wall_time),
                                host_name(), static_cast<int>(getpid()), counter++, suffix);
  file_ = std::fopen(path_.c_str(), "wb");
  if (file_ == nullptr) {
    throw IoError(fmt::format("cannot open {} for writing: {}", to_utf8(path_), std::strerror(errno)));
  }
  std::string first = encode_event_header(wall_time, 0);
  put_bytes(first, kEventFileVersion, "brain.Event:2");
  {
    std::lock_guard lock(mu_);
    write_event(first);
    flush_locked();
  }
  flusher_ = std::thread([this] { flush_loop(); });
}

EventWriter::~EventWriter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  std::lock_guard lock(mu_);
  if (file_ != nullptr) {
    std::fflush(file_);
    std::fclose(file_);
    file_ = nullptr;
  }
}

void EventWriter::add_scalar(const std::string& tag, double value, int64_t step, double wall_time) {
  VIGIL_CHECK(!tag.empty(), "expected a non-empty scalar tag, got an empty one");
  const std::string event = encode_scalar_event(tag, value, step, wall_time < 0 ? now_seconds() : wall_time);
  std::lock_guard lock(mu_);
  write_event(event);
}

void EventWriter::flush() {
  std::lock_guard lock(mu_);
  flush_locked();
  if (failed_) throw IoError(fmt::format("writing {} failed", to_utf8(path_)));
}

void EventWriter::write_event(std::string_view event) {
  const std::string record = tfrecord_frame(event);
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size()) failed_ = true;
  dirty_ = true;
}

void EventWriter::flush_locked() {
  if (!dirty_) return;
  if (std::fflush(file_) != 0) failed_ = true;
  dirty_ = false;
}

void EventWriter::flush_loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    wake_.wait_for(lock, flush_interval_, [this] { return stop_; });
    flush_locked();  // a failure is remembered in failed_ and reported by the next flush()
  }
}

}  // namespace vigil::train
