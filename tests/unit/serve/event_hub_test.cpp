// The server-sent event fan-out: every subscriber gets every message in order; a subscriber that does not
// read loses its oldest messages (counted, and told) while the publisher and the others go on; Last-Event-ID
// resumes from the history; close() wakes waiting readers; SSE records are formatted per the spec.

#include "vigil/serve/event_hub.h"

#include <gtest/gtest.h>

#include <thread>

#include "vigil/core/error.h"

namespace vigil::serve {
namespace {

using std::chrono::milliseconds;

std::vector<uint64_t> ids(const HubBatch& b) {
  std::vector<uint64_t> out;
  for (const auto& m : b.messages) out.push_back(m.id);
  return out;
}

TEST(EventHub, EverySubscriberGetsEveryMessageInOrder) {
  EventHub hub;
  auto a = hub.subscribe(), b = hub.subscribe();
  EXPECT_EQ(hub.publish("start", R"({"id":"x"})"), 1u);
  EXPECT_EQ(hub.publish("end", R"({"id":"x"})"), 2u);
  for (auto* s : {&a, &b}) {
    const HubBatch batch = (*s)->next(milliseconds(0));
    ASSERT_EQ(batch.messages.size(), 2u);
    EXPECT_EQ(batch.messages[0].event, "start");
    EXPECT_EQ(batch.messages[1].event, "end");
    EXPECT_EQ(batch.lost, 0u);
    EXPECT_FALSE(batch.closed);
  }
  EXPECT_TRUE(a->next(milliseconds(0)).messages.empty());
  EXPECT_EQ(hub.last_id(), 2u);
}

TEST(EventHub, ASlowSubscriberLosesItsOldestMessagesAndIsToldHowMany) {
  EventHubOptions o;
  o.queue_capacity = 3;
  EventHub hub(o);
  auto slow = hub.subscribe(), fast = hub.subscribe();
  for (int i = 0; i < 10; ++i) {
    hub.publish("update", std::to_string(i));
    EXPECT_EQ(fast->next(milliseconds(0)).messages.size(), 1u);  // keeps up: loses nothing
  }
  const HubBatch batch = slow->next(milliseconds(0));
  EXPECT_EQ(batch.lost, 7u);
  EXPECT_EQ(ids(batch), (std::vector<uint64_t>{8, 9, 10}));  // the newest survive
  EXPECT_EQ(slow->next(milliseconds(0)).lost, 0u) << "the loss is reported once";
}

TEST(EventHub, LastEventIdResumesFromTheHistory) {
  EventHubOptions o;
  o.history = 4;
  EventHub hub(o);
  for (int i = 0; i < 6; ++i) hub.publish("start", std::to_string(i));  // ids 1..6; history keeps 3..6
  const HubBatch resumed = hub.subscribe(4)->next(milliseconds(0));
  EXPECT_EQ(ids(resumed), (std::vector<uint64_t>{5, 6}));
  EXPECT_EQ(resumed.lost, 0u);
  const HubBatch from_start = hub.subscribe(0)->next(milliseconds(0));
  EXPECT_EQ(ids(from_start), (std::vector<uint64_t>{3, 4, 5, 6}));
  EXPECT_EQ(from_start.lost, 2u) << "ids 1 and 2 left the history";
  EXPECT_TRUE(hub.subscribe(6)->next(milliseconds(0)).messages.empty());
  EXPECT_TRUE(hub.subscribe()->next(milliseconds(0)).messages.empty()) << "no replay without an id";
}

TEST(EventHub, AWaitingReaderWakesForAMessageAndForClose) {
  EventHub hub;
  auto s = hub.subscribe();
  std::thread publisher([&] { hub.publish("start", "{}"); });
  // Waits for the message however long the thread takes to start (the timeouts only bound a broken hub).
  HubBatch got;
  for (int i = 0; i < 120 && got.messages.empty(); ++i) got = s->next(milliseconds(1000));
  publisher.join();
  ASSERT_EQ(got.messages.size(), 1u);
  EXPECT_EQ(got.messages[0].event, "start");

  std::thread closer([&] { hub.close(); });
  HubBatch closed;
  for (int i = 0; i < 120 && !closed.closed; ++i) closed = s->next(milliseconds(1000));
  closer.join();
  EXPECT_TRUE(closed.closed);
  EXPECT_TRUE(hub.subscribe()->next(milliseconds(0)).closed) << "subscribers after close start closed";
}

TEST(EventHub, DroppedSubscribersAreForgotten) {
  EventHub hub;
  auto keep = hub.subscribe();
  { auto gone = hub.subscribe(); }
  EXPECT_EQ(hub.subscribers(), 1u);
  hub.publish("start", "{}");
  EXPECT_EQ(keep->next(milliseconds(0)).messages.size(), 1u);
}

TEST(EventHub, OptionsAreValidated) {
  EventHubOptions o;
  o.queue_capacity = 0;
  EXPECT_THROW(EventHub{o}, InvalidArgument);
}

TEST(FormatSse, WritesIdEventAndOneDataLinePerLine) {
  EXPECT_EQ(format_sse({7, "start", R"({"a":1})"}), "id: 7\nevent: start\ndata: {\"a\":1}\n\n");
  EXPECT_EQ(format_sse({8, "end", "x\ny"}), "id: 8\nevent: end\ndata: x\ndata: y\n\n");
}

}  // namespace
}  // namespace vigil::serve
