// The reaper (native/src/reaper.h): every watched child is reaped exactly once, as soon as it
// exits, with one exited event carrying its status and duration, whatever the order in which
// children end; stopping it with children still running loses nothing it had reported.
#include "../src/reaper.h"

#include <gtest/gtest.h>

#include <map>

#include "recording_event_sink.h"
#include "test_children.h"

namespace parafork {
namespace {

class ReaperTest : public ::testing::Test {
 protected:
  void SetUp() override { reaper_.Start(); }
  void TearDown() override { reaper_.Stop(); }

  ChildRecord* StartWatched(uint64_t id, int exit_code, int delay_ms = 0) {
    ChildRecord* record = children_.Insert(StartChild(id, exit_code, delay_ms));
    EXPECT_EQ(reaper_.Watch(record), 0);
    return record;
  }

  ChildTable children_;
  RecordingEventSink events_;
  Reaper reaper_{children_, events_};
};

TEST_F(ReaperTest, AnExitedChildGivesOneExitedEventWithItsCodeAndDuration) {
  StartWatched(/*id=*/7, /*exit_code=*/4, /*delay_ms=*/20);
  const std::vector<Event> events = events_.WaitFor(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(KindOf(events[0]), EventKind::kExited);
  EXPECT_EQ(IdOf(events[0]), 7u);
  EXPECT_EQ(events[0].fields[ExitedFields::kExitCode], 4);
  EXPECT_GE(events[0].fields[ExitedFields::kDurationNs], 20e6) << "it slept 20 ms before exiting";
  EXPECT_EQ(children_.Size(), 0u) << "reaped: no zombie, no record left";
}

TEST_F(ReaperTest, AKilledChildIsReportedWithItsSignal) {
  StartWatched(/*id=*/1, kWaitToBeKilled);
  ASSERT_EQ(children_.Signal(1, SIGTERM), 0);
  const std::vector<Event> events = events_.WaitFor(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fields[ExitedFields::kExitCode], -1);
  EXPECT_EQ(events[0].fields[ExitedFields::kSignal], SIGTERM);
}

TEST_F(ReaperTest, ManyChildrenEndingTogetherAreEachReapedExactlyOnce) {
  constexpr uint64_t kChildren = 300;  // more than one epoll_wait batch (256)
  for (uint64_t id = 1; id <= kChildren; ++id) StartWatched(id, static_cast<int>(id % 100), static_cast<int>(id % 7));
  const std::vector<Event> events = events_.WaitFor(kChildren);
  ASSERT_EQ(events.size(), kChildren);
  std::map<uint64_t, int> exit_codes;
  for (const Event& event : events) {
    EXPECT_EQ(KindOf(event), EventKind::kExited);
    EXPECT_TRUE(exit_codes.emplace(IdOf(event), static_cast<int>(event.fields[ExitedFields::kExitCode])).second)
        << "child " << IdOf(event) << " reported twice";
  }
  for (uint64_t id = 1; id <= kChildren; ++id) EXPECT_EQ(exit_codes[id], static_cast<int>(id % 100)) << "child " << id;
  EXPECT_EQ(children_.Size(), 0u);
}

TEST_F(ReaperTest, StoppingWithAChildStillRunningReportsNothingForItAndLeavesItToTheTable) {
  ChildRecord* record = StartWatched(/*id=*/1, kWaitToBeKilled);
  const pid_t pid = record->pid;
  reaper_.Stop();
  EXPECT_TRUE(events_.Events().empty());
  EXPECT_EQ(children_.Size(), 1u);
  KillAndReap(pid);
}

}  // namespace
}  // namespace parafork
