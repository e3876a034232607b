// The event records (native/src/event.h): each named constructor puts every value at the index the
// layout names for it, the layout JavaScript reads (`eventLayout`) numbers every field of a kind
// once, and no record outgrows kEventStride.
#include "../src/event.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "../src/child_table.h"

namespace parafork {
namespace {

template <size_t kCount>
double Field(const Event& event, const EventFieldName (&names)[kCount], const std::string& name) {
  for (const EventFieldName& field : names) {
    if (name == field.name) return event.fields[field.index];
  }
  ADD_FAILURE() << "the layout names no field " << name;
  return -12345;
}

double Kind(const std::string& name) {
  for (const EventFieldName& kind : kEventKindNames) {
    if (name == kind.name) return static_cast<double>(kind.index);
  }
  ADD_FAILURE() << "the layout names no kind " << name;
  return -12345;
}

TEST(Event, ASpawnedEventCarriesThePidThePipeEndsTheResultFileAndTheTimingsUnderTheirNames) {
  const Event event = SpawnedEvent(/*id=*/7, /*pid=*/4321, /*stdout_fd=*/11, /*stderr_fd=*/-1, /*result_fd=*/13,
                                   /*queued_ns=*/250, /*spawn_ns=*/90'000);
  EXPECT_EQ(event.fields[EventFields::kKind], Kind("spawned"));
  EXPECT_EQ(event.fields[EventFields::kId], 7);
  EXPECT_EQ(Field(event, kSpawnedFieldNames, "pid"), 4321);
  EXPECT_EQ(Field(event, kSpawnedFieldNames, "stdoutFd"), 11);
  EXPECT_EQ(Field(event, kSpawnedFieldNames, "stderrFd"), -1) << "no pipe: -1";
  EXPECT_EQ(Field(event, kSpawnedFieldNames, "queuedNs"), 250);
  EXPECT_EQ(Field(event, kSpawnedFieldNames, "spawnNs"), 90'000);
  EXPECT_EQ(Field(event, kSpawnedFieldNames, "resultFd"), 13);
}

TEST(Event, AFailedEventCarriesTheErrnoAndTheSystemCallUnderTheirNames) {
  const Event event = FailedEvent(/*id=*/8, /*error_number=*/2, Syscall::kExecve, /*queued_ns=*/5, /*spawn_ns=*/0);
  EXPECT_EQ(event.fields[EventFields::kKind], Kind("failed"));
  EXPECT_EQ(event.fields[EventFields::kId], 8);
  EXPECT_EQ(Field(event, kFailedFieldNames, "errno"), 2);
  EXPECT_EQ(Field(event, kFailedFieldNames, "syscall"), static_cast<double>(Syscall::kExecve));
  EXPECT_EQ(Field(event, kFailedFieldNames, "queuedNs"), 5);
  EXPECT_EQ(Field(event, kFailedFieldNames, "spawnNs"), 0);
}

TEST(Event, AnExitedEventCarriesTheStatusAndTheResourceUsageUnderTheirNames) {
  ExitInfo exit;
  exit.exit_code = -1;
  exit.signal = 9;
  exit.user_us = 1200;
  exit.system_us = 300;
  exit.max_rss_kb = 5000;
  const Event event = ExitedEvent(/*id=*/9, exit, /*duration_ns=*/1'000'000);
  EXPECT_EQ(event.fields[EventFields::kKind], Kind("exited"));
  EXPECT_EQ(event.fields[EventFields::kId], 9);
  EXPECT_EQ(Field(event, kExitedFieldNames, "exitCode"), -1) << "a signal ended it";
  EXPECT_EQ(Field(event, kExitedFieldNames, "signal"), 9);
  EXPECT_EQ(Field(event, kExitedFieldNames, "durationNs"), 1'000'000);
  EXPECT_EQ(Field(event, kExitedFieldNames, "userUs"), 1200);
  EXPECT_EQ(Field(event, kExitedFieldNames, "systemUs"), 300);
  EXPECT_EQ(Field(event, kExitedFieldNames, "maxRssKb"), 5000);
}

template <size_t kCount>
void ExpectDistinctIndicesAfterKindAndId(const EventFieldName (&names)[kCount]) {
  std::set<size_t> seen;
  for (const EventFieldName& field : names) {
    EXPECT_GT(field.index, EventFields::kId) << field.name << " would overwrite the kind or the id";
    EXPECT_LT(field.index, kEventStride) << field.name << " lies outside the record";
    EXPECT_TRUE(seen.insert(field.index).second) << field.name << " shares its index with another field";
  }
}

TEST(Event, EveryKindNumbersItsFieldsOnceInsideTheRecordAfterTheKindAndTheId) {
  ExpectDistinctIndicesAfterKindAndId(kSpawnedFieldNames);
  ExpectDistinctIndicesAfterKindAndId(kFailedFieldNames);
  ExpectDistinctIndicesAfterKindAndId(kExitedFieldNames);
}

TEST(Event, KindsAreDistinctAndNeverZeroSoAnUnwrittenRecordIsNoEvent) {
  std::set<size_t> kinds;
  for (const EventFieldName& kind : kEventKindNames) {
    EXPECT_NE(kind.index, 0u) << kind.name;
    EXPECT_TRUE(kinds.insert(kind.index).second) << kind.name;
  }
}

}  // namespace
}  // namespace parafork
