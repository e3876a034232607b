// The spawner end to end on real children (native/src/spawner.h), without JavaScript: a spawn
// reports its child's exec and then its exit, stdout arrives through the pipe the spawned event
// hands over, and each failure before or after the clone is reported once with its errno and
// step, leaving no child behind. The child's code (child.cc, clone3_entry.S) is linked without
// sanitizers: it runs between clone and exec, where the sanitizers' runtime may not.
#include "../src/spawner.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>

#include "recording_event_sink.h"
#include "temporary_directory.h"

namespace parafork {
namespace {

class SpawnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reaper_.Start();
    SpawnerOptions options;
    options.threads = 1;
    spawner_ = std::make_unique<Spawner>(options, children_, reaper_, events_);
    spawner_->Start();
  }
  void TearDown() override {
    spawner_->Stop();
    reaper_.Stop();
  }

  std::unique_ptr<SpawnRequest> Request(uint64_t id, std::vector<std::string> argv) {
    auto request = std::make_unique<SpawnRequest>();
    request->id = id;
    request->file = argv[0];
    request->search_path = "/usr/bin:/bin";
    request->argv = std::move(argv);
    request->env = std::make_shared<const std::vector<std::string>>(std::vector<std::string>{"PATH=/usr/bin:/bin"});
    return request;
  }

  ChildTable children_;
  RecordingEventSink events_;
  Reaper reaper_{children_, events_};
  std::unique_ptr<Spawner> spawner_;
};

TEST_F(SpawnerTest, ASpawnReportsItsChildsExecThenItsExit) {
  ASSERT_TRUE(spawner_->Enqueue(Request(1, {"sh", "-c", "exit 3"})));
  const std::vector<Event> events = events_.WaitFor(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(KindOf(events[0]), EventKind::kSpawned);
  EXPECT_GT(events[0].fields[SpawnedFields::kPid], 0);
  EXPECT_GT(events[0].fields[SpawnedFields::kSpawnNs], 0);
  EXPECT_EQ(events[0].fields[SpawnedFields::kStdoutFd], -1) << "ignored output: no pipe";
  EXPECT_EQ(KindOf(events[1]), EventKind::kExited);
  EXPECT_EQ(IdOf(events[1]), 1u);
  EXPECT_EQ(events[1].fields[ExitedFields::kExitCode], 3);
  EXPECT_EQ(children_.Size(), 0u);
}

TEST_F(SpawnerTest, StdoutArrivesThroughThePipeTheSpawnedEventHandsOver) {
  auto request = Request(1, {"echo", "hello"});
  request->stdout_target = {OutputMode::kPipe, ""};
  ASSERT_TRUE(spawner_->Enqueue(std::move(request)));
  const std::vector<Event> events = events_.WaitFor(1);
  ASSERT_EQ(KindOf(events.at(0)), EventKind::kSpawned);
  UniqueFd stdout_end(static_cast<int>(events[0].fields[SpawnedFields::kStdoutFd]));
  ASSERT_GT(stdout_end.get(), 2);
  std::string output;
  char buffer[64];
  ssize_t length;
  while ((length = read(stdout_end.get(), buffer, sizeof(buffer))) > 0) output.append(buffer, static_cast<size_t>(length));
  EXPECT_EQ(output, "hello\n") << "and then EOF: the spawner closed its copy of the write end";
  events_.WaitFor(2);
}

TEST_F(SpawnerTest, AResultFileIsTheChildsFd3AndTheSpawnedEventHandsOverAnFdToReadItAfterTheExit) {
  auto request = Request(2, {"sh", "-c", "printf done >&3; exec 3>&-; exit 0"});
  request->result_file = true;
  ASSERT_TRUE(spawner_->Enqueue(std::move(request)));
  const std::vector<Event> events = events_.WaitFor(2);
  ASSERT_EQ(KindOf(events.at(0)), EventKind::kSpawned);
  ASSERT_EQ(KindOf(events.at(1)), EventKind::kExited);
  EXPECT_EQ(events[1].fields[ExitedFields::kExitCode], 0) << "fd 3 was open in the child";
  UniqueFd result(static_cast<int>(events[0].fields[SpawnedFields::kResultFd]));
  ASSERT_GT(result.get(), 2);
  char buffer[16] = {};
  EXPECT_EQ(pread(result.get(), buffer, sizeof(buffer), 0), 4);
  EXPECT_STREQ(buffer, "done");
}

TEST_F(SpawnerTest, WithoutAResultFileTheChildHasNoFd3AndTheEventCarriesNone) {
  ASSERT_TRUE(spawner_->Enqueue(Request(3, {"sh", "-c", "exec 4>&3"})));
  const std::vector<Event> events = events_.WaitFor(2);
  EXPECT_EQ(events.at(0).fields[SpawnedFields::kResultFd], -1);
  EXPECT_NE(events.at(1).fields[ExitedFields::kExitCode], 0) << "fd 3 is not open: the duplication fails";
}

TEST_F(SpawnerTest, AnExecutableNotOnThePathFailsInExecveWithEnoentAndLeavesNoChild) {
  ASSERT_TRUE(spawner_->Enqueue(Request(4, {"parafork-no-such-program"})));
  const std::vector<Event> events = events_.WaitFor(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(KindOf(events[0]), EventKind::kFailed);
  EXPECT_EQ(IdOf(events[0]), 4u);
  EXPECT_EQ(events[0].fields[FailedFields::kErrno], ENOENT);
  EXPECT_EQ(events[0].fields[FailedFields::kSyscall], static_cast<double>(Syscall::kExecve));
  EXPECT_GT(events[0].fields[FailedFields::kSpawnNs], 0) << "the child was cloned, tried every candidate, and was reaped";
  EXPECT_EQ(children_.Size(), 0u);
}

TEST_F(SpawnerTest, AnOutputFileThatCannotBeOpenedFailsBeforeAnyClone) {
  TemporaryDirectory directory;
  auto request = Request(5, {"true"});
  request->stderr_target = {OutputMode::kFile, directory / "missing/err"};
  ASSERT_TRUE(spawner_->Enqueue(std::move(request)));
  const std::vector<Event> events = events_.WaitFor(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fields[FailedFields::kErrno], ENOENT);
  EXPECT_EQ(events[0].fields[FailedFields::kSyscall], static_cast<double>(Syscall::kOpen));
  EXPECT_EQ(events[0].fields[FailedFields::kSpawnNs], 0) << "no clone";
}

TEST_F(SpawnerTest, ASandboxedSpawnWithoutSandboxResourcesFailsWithEnotsup) {
  auto request = Request(6, {"true"});
  request->sandbox.enabled = true;
  ASSERT_TRUE(spawner_->Enqueue(std::move(request)));
  const std::vector<Event> events = events_.WaitFor(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].fields[FailedFields::kErrno], ENOTSUP);
}

TEST_F(SpawnerTest, ManySpawnsEachReportOneSpawnAndOneExit) {
  constexpr uint64_t kSpawns = 100;
  for (uint64_t id = 1; id <= kSpawns; ++id) ASSERT_TRUE(spawner_->Enqueue(Request(id, {"true"})));
  const std::vector<Event> events = events_.WaitFor(2 * kSpawns);
  ASSERT_EQ(events.size(), 2 * kSpawns);
  std::map<uint64_t, std::vector<EventKind>> kinds_of;
  for (const Event& event : events) kinds_of[IdOf(event)].push_back(KindOf(event));
  for (uint64_t id = 1; id <= kSpawns; ++id) {
    EXPECT_EQ(kinds_of[id], (std::vector<EventKind>{EventKind::kSpawned, EventKind::kExited})) << "spawn " << id;
  }
}

}  // namespace
}  // namespace parafork
