// See engine.h.
#include "engine.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <system_error>

#include "capabilities.h"
#include "errors.h"
#include "log_file.h"
#include "monotonic_clock.h"
#include "seccomp_profile.h"

namespace parafork {

namespace {

constexpr int kMaxThreads = 256;

[[noreturn]] void ThrowType(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, "parafork: " + message);
}

// A string JavaScript handed us, refusing embedded NULs: execve(2) and open(2) would silently cut
// the string there and run or open something else.
std::string RequireString(Napi::Env env, const Napi::Value& value, const char* what) {
  if (!value.IsString()) ThrowType(env, std::string(what) + " must be a string");
  std::string result = value.As<Napi::String>().Utf8Value();
  if (result.find('\0') != std::string::npos) ThrowType(env, std::string(what) + " must not contain NUL bytes");
  return result;
}

std::vector<std::string> RequireStringArray(Napi::Env env, const Napi::Value& value, const char* what) {
  if (!value.IsArray()) ThrowType(env, std::string(what) + " must be an array of strings");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<std::string> result;
  result.reserve(array.Length());
  for (uint32_t index = 0; index < array.Length(); ++index) {
    result.push_back(RequireString(env, array.Get(index), what));
  }
  return result;
}

double RequireNumber(Napi::Env env, const Napi::Value& value, const char* what) {
  if (!value.IsNumber()) ThrowType(env, std::string(what) + " must be a number");
  return value.As<Napi::Number>().DoubleValue();
}

OutputTarget RequireOutput(Napi::Env env, PropertyKeys& keys, const Napi::Object& request, const char* mode_key,
                           const char* path_key) {
  OutputTarget target;
  const double mode = RequireNumber(env, keys.Get(request, mode_key), mode_key);
  if (mode != 0 && mode != 1 && mode != 2 && mode != 3 && mode != 4) {
    ThrowType(env, std::string(mode_key) + " must be 0, 1, 2, 3 or 4");
  }
  target.mode = static_cast<OutputMode>(static_cast<int>(mode));
  target.path = RequireString(env, keys.Get(request, path_key), path_key);
  if ((target.IsFile() || target.mode == OutputMode::kLog) && target.path.empty()) {
    ThrowType(env, std::string(path_key) + " must name a file");
  }
  return target;
}

uint64_t RequireWholeNumber(Napi::Env env, const Napi::Value& value, const char* what, double maximum) {
  const double number = RequireNumber(env, value, what);
  if (std::floor(number) != number || number < 0 || number > maximum) {
    ThrowType(env, std::string(what) + " must be a whole number from 0 to " + std::to_string(static_cast<uint64_t>(maximum)));
  }
  return static_cast<uint64_t>(number);
}

bool RequireBoolean(Napi::Env env, const Napi::Value& value, const char* what) {
  if (!value.IsBoolean()) ThrowType(env, std::string(what) + " must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

// logMaxBytes applies to the request's log; stdout and stderr, when both go to a log, share one.
void RequireLog(Napi::Env env, PropertyKeys& keys, const Napi::Object& object, SpawnRequest& request) {
  OutputTarget& out = request.stdout_target;
  OutputTarget& err = request.stderr_target;
  if (out.mode != OutputMode::kLog && err.mode != OutputMode::kLog) return;
  if (out.mode == OutputMode::kLog && err.mode == OutputMode::kLog && out.path != err.path) {
    ThrowType(env, "stdoutPath and stderrPath must name the same log when both streams go to a log");
  }
  const uint64_t max_bytes =
      RequireWholeNumber(env, keys.Get(object, "logMaxBytes"), "logMaxBytes", 9007199254740991.0);
  if (max_bytes < LogFile::kMinimumMaxBytes) {
    ThrowType(env, "logMaxBytes must be at least " + std::to_string(LogFile::kMinimumMaxBytes));
  }
  out.log_max_bytes = max_bytes;
  err.log_max_bytes = max_bytes;
  // Optional (false): made at the first byte written (spawn_request.h).
  const Napi::Value create_when_written = keys.Get(object, "logCreateWhenWritten");
  const bool lazy = !create_when_written.IsUndefined() && RequireBoolean(env, create_when_written, "logCreateWhenWritten");
  out.log_create_when_written = lazy;
  err.log_create_when_written = lazy;
}

std::string RequireAbsolutePath(Napi::Env env, const Napi::Value& value, const char* what) {
  std::string path = RequireString(env, value, what);
  if (path.empty() || path[0] != '/') ThrowType(env, std::string(what) + " must be an absolute path");
  return path;
}

// sandbox: null, or { network, rootfs, readOnlyRoot, tmpSizeBytes, mounts, maskedPaths, workingDirectory, filesystem,
// userNamespace ({ hostId, size } or null), uid, gid,
// hostname, seccomp, seccompProgram, seccompProgramAttachPoint, maxOpenFiles, maxFileSizeBytes }: every field
// present (TypeScript fills defaults). seccompProgram: null (the default policy) or a compiled profile's bytes
// (seccomp_profile.h); seccompProgramAttachPoint: null with it, else the attach point its compile judged
// ('privileged', 'privilegedUnlessEmptyingUserKeyrings', 'last'; seccomp_attach_point.h).
// maskedPaths: the paths, one per line (sandbox_masks.h).
// null, or an absolute directory that `path` is or lies below (MountRequest::beneath).
std::string OptionalBeneath(Napi::Env env, const Napi::Value& value, const std::string& path, const char* name) {
  if (value.IsNull() || value.IsUndefined()) return "";
  std::string directory = RequireAbsolutePath(env, value, name);
  if (directory == "/" || (path != directory && !IsBelow(path, directory))) {
    ThrowType(env, std::string(name) + " must be a directory other than / that the path is or lies below: " + path + " is not below " + directory);
  }
  return directory;
}

SandboxRequest RequireSandbox(Napi::Env env, PropertyKeys& keys, MaskedPathsCache& masked_paths, const Napi::Value& value) {
  SandboxRequest sandbox;
  if (value.IsNull() || value.IsUndefined()) return sandbox;
  if (!value.IsObject()) ThrowType(env, "sandbox must be an object or null");
  Napi::Object object = value.As<Napi::Object>();
  sandbox.enabled = true;
  const uint64_t network = RequireWholeNumber(env, keys.Get(object, "network"), "sandbox.network", 2);
  sandbox.network = static_cast<NetworkMode>(network);
  sandbox.rootfs = RequireAbsolutePath(env, keys.Get(object, "rootfs"), "sandbox.rootfs");
  sandbox.rootfs_beneath = OptionalBeneath(env, keys.Get(object, "rootfsBeneath"), sandbox.rootfs, "sandbox.rootfsBeneath");
  sandbox.read_only_root = RequireBoolean(env, keys.Get(object, "readOnlyRoot"), "sandbox.readOnlyRoot");
  sandbox.tmp_size_bytes = RequireWholeNumber(env, keys.Get(object, "tmpSizeBytes"), "sandbox.tmpSizeBytes", 9007199254740991.0);
  Napi::Value mounts = keys.Get(object, "mounts");
  if (!mounts.IsArray()) ThrowType(env, "sandbox.mounts must be an array");
  Napi::Array mount_array = mounts.As<Napi::Array>();
  for (uint32_t index = 0; index < mount_array.Length(); ++index) {
    Napi::Value entry = mount_array.Get(index);
    if (!entry.IsObject()) ThrowType(env, "sandbox.mounts[] must be objects");
    Napi::Object mount = entry.As<Napi::Object>();
    MountRequest request{RequireAbsolutePath(env, keys.Get(mount, "hostPath"), "sandbox.mounts[].hostPath"),
                         RequireAbsolutePath(env, keys.Get(mount, "mountPath"), "sandbox.mounts[].mountPath"),
                         RequireBoolean(env, keys.Get(mount, "readOnly"), "sandbox.mounts[].readOnly"), ""};
    request.beneath = OptionalBeneath(env, keys.Get(mount, "beneath"), request.host_path, "sandbox.mounts[].beneath");
    sandbox.mounts.push_back(std::move(request));
  }
  std::string problem;
  sandbox.masked_paths = masked_paths.Parse(RequireString(env, keys.Get(object, "maskedPaths"), "sandbox.maskedPaths"), &problem);
  if (!sandbox.masked_paths) ThrowType(env, "sandbox.maskedPaths: " + problem);
  // A mount inside a masked directory would be hidden by the mask (or find no mount point in it).
  for (const MountRequest& mount : sandbox.mounts) {
    for (const std::string& masked : sandbox.masked_paths->paths) {
      if (IsBelow(mount.mount_path, masked)) {
        ThrowType(env, "sandbox.mounts[].mountPath must not lie inside a masked path: " + mount.mount_path + " is inside " + masked);
      }
    }
  }
  sandbox.working_directory = RequireAbsolutePath(env, keys.Get(object, "workingDirectory"), "sandbox.workingDirectory");
  sandbox.filesystem = RequireBoolean(env, keys.Get(object, "filesystem"), "sandbox.filesystem");
  sandbox.uid = static_cast<uint32_t>(RequireWholeNumber(env, keys.Get(object, "uid"), "sandbox.uid", 4294967294.0));
  sandbox.gid = static_cast<uint32_t>(RequireWholeNumber(env, keys.Get(object, "gid"), "sandbox.gid", 4294967294.0));
  Napi::Value user_namespace = keys.Get(object, "userNamespace");
  if (!user_namespace.IsNull()) {
    if (!user_namespace.IsObject()) ThrowType(env, "sandbox.userNamespace must be { hostId, size } or null");
    Napi::Object range = user_namespace.As<Napi::Object>();
    sandbox.user_namespace = true;
    sandbox.user_namespace_host_id = static_cast<uint32_t>(
        RequireWholeNumber(env, keys.Get(range, "hostId"), "sandbox.userNamespace.hostId", 4294967294.0));
    sandbox.user_namespace_size = static_cast<uint32_t>(
        RequireWholeNumber(env, keys.Get(range, "size"), "sandbox.userNamespace.size", 4294967294.0));
    if (sandbox.user_namespace_host_id == 0 || sandbox.user_namespace_size == 0 ||
        static_cast<uint64_t>(sandbox.user_namespace_host_id) + sandbox.user_namespace_size > 4294967295ull) {
      ThrowType(env, "sandbox.userNamespace must map a non-empty range of host ids above 0");
    }
    if (sandbox.uid >= sandbox.user_namespace_size || sandbox.gid >= sandbox.user_namespace_size) {
      ThrowType(env, "sandbox.uid and sandbox.gid must lie inside the user namespace's range");
    }
  }
  sandbox.hostname = RequireString(env, keys.Get(object, "hostname"), "sandbox.hostname");
  if (sandbox.hostname.size() > 64) ThrowType(env, "sandbox.hostname must be at most 64 bytes");
  sandbox.seccomp = RequireBoolean(env, keys.Get(object, "seccomp"), "sandbox.seccomp");
  Napi::Value seccomp_program = keys.Get(object, "seccompProgram");
  if (!seccomp_program.IsNull()) {
    if (!sandbox.seccomp) ThrowType(env, "sandbox.seccompProgram must be null when sandbox.seccomp is false");
    sandbox.seccomp_program = RequireSeccompProgram(env, seccomp_program, "sandbox.seccompProgram");
  }
  Napi::Value attach_point = keys.Get(object, "seccompProgramAttachPoint");
  if (seccomp_program.IsNull() != attach_point.IsNull()) {
    ThrowType(env, "sandbox.seccompProgramAttachPoint must be given with sandbox.seccompProgram, and null without it");
  }
  if (!attach_point.IsNull()) {
    const std::optional<SeccompAttachPoint> point =
        SeccompAttachPointNamed(RequireString(env, attach_point, "sandbox.seccompProgramAttachPoint").c_str());
    if (!point) {
      ThrowType(env, "sandbox.seccompProgramAttachPoint must be 'privileged', 'privilegedUnlessEmptyingUserKeyrings' or 'last'");
    }
    sandbox.seccomp_program_attach_point = *point;
  }
  sandbox.max_open_files = RequireWholeNumber(env, keys.Get(object, "maxOpenFiles"), "sandbox.maxOpenFiles", 1048576.0);
  sandbox.max_file_size_bytes =
      RequireWholeNumber(env, keys.Get(object, "maxFileSizeBytes"), "sandbox.maxFileSizeBytes", 9007199254740991.0);
  sandbox.max_processes = RequireWholeNumber(env, keys.Get(object, "maxProcesses"), "sandbox.maxProcesses", 4194304.0);
  sandbox.own_uid = RequireBoolean(env, keys.Get(object, "ownUid"), "sandbox.ownUid");
  if (sandbox.own_uid && sandbox.uid == 0 && !sandbox.user_namespace) {
    ThrowType(env, "sandbox.ownUid needs a uid other than 0: root's keyrings are the node's");
  }
  if (sandbox.max_processes > 0 && sandbox.uid == 0 && !sandbox.user_namespace) {
    ThrowType(env, "sandbox.maxProcesses needs a uid other than 0: the kernel does not hold root to RLIMIT_NPROC");
  }
  Napi::Value oom_score_adjust = keys.Get(object, "oomScoreAdjust");
  if (!oom_score_adjust.IsNull()) {
    const double adjust = RequireNumber(env, oom_score_adjust, "sandbox.oomScoreAdjust");
    if (std::floor(adjust) != adjust || adjust < -1000 || adjust > 1000) {
      ThrowType(env, "sandbox.oomScoreAdjust must be a whole number from -1000 to 1000, or null");
    }
    // See SandboxPlan::oom_score_adj: a child sharing the agent's memory without CLONE_VFORK
    // would set the agent's own score too.
    if (sandbox.user_namespace) ThrowType(env, "sandbox.oomScoreAdjust must be null with a user namespace");
    sandbox.oom_score_adj = std::to_string(static_cast<int>(adjust));
  }
  return sandbox;
}

// cgroupSetup.joinFds: null, or { cgroup, cgroupsV1 }: fds kept open by the caller for the joins
// (SpawnRequest::cgroup_join_fd), -1 for none and one per cgroupsV1 directory or none.
void RequireJoinFds(Napi::Env env, PropertyKeys& keys, const Napi::Value& value, SpawnRequest& request) {
  if (value.IsNull() || value.IsUndefined()) return;
  if (!value.IsObject()) ThrowType(env, "cgroupSetup.joinFds must be an object or null");
  Napi::Object object = value.As<Napi::Object>();
  const double cgroup = RequireNumber(env, keys.Get(object, "cgroup"), "cgroupSetup.joinFds.cgroup");
  if (std::floor(cgroup) != cgroup || cgroup < -1 || cgroup > INT32_MAX) {
    ThrowType(env, "cgroupSetup.joinFds.cgroup must be an fd or -1");
  }
  if (cgroup >= 0 && request.cgroup.empty()) ThrowType(env, "cgroupSetup.joinFds.cgroup needs cgroup");
  request.cgroup_join_fd = static_cast<int>(cgroup);
  Napi::Value v1 = keys.Get(object, "cgroupsV1");
  if (!v1.IsArray()) ThrowType(env, "cgroupSetup.joinFds.cgroupsV1 must be an array");
  Napi::Array fds = v1.As<Napi::Array>();
  if (fds.Length() != 0 && fds.Length() != request.cgroups_v1.size()) {
    ThrowType(env, "cgroupSetup.joinFds.cgroupsV1 must hold one fd per cgroupsV1 directory, or none");
  }
  for (uint32_t index = 0; index < fds.Length(); ++index) {
    request.cgroups_v1_join_fds.push_back(
        static_cast<int>(RequireWholeNumber(env, fds.Get(index), "cgroupSetup.joinFds.cgroupsV1[]", INT32_MAX)));
  }
}

// cgroupSetup: null, or { files: [{ path, value, readBack, mayFail }], joinFds }: make the request's cgroup
// directories and write these limit files, each directly inside one of those directories.
void RequireCgroupSetup(Napi::Env env, PropertyKeys& keys, const Napi::Value& value, SpawnRequest& request) {
  if (value.IsNull() || value.IsUndefined()) return;
  if (!value.IsObject()) ThrowType(env, "cgroupSetup must be an object or null");
  request.create_cgroups = true;
  RequireJoinFds(env, keys, keys.Get(value.As<Napi::Object>(), "joinFds"), request);
  Napi::Value files = keys.Get(value.As<Napi::Object>(), "files");
  if (!files.IsArray()) ThrowType(env, "cgroupSetup.files must be an array");
  Napi::Array file_array = files.As<Napi::Array>();
  for (uint32_t index = 0; index < file_array.Length(); ++index) {
    Napi::Value entry = file_array.Get(index);
    if (!entry.IsObject()) ThrowType(env, "cgroupSetup.files[] must be objects");
    Napi::Object file = entry.As<Napi::Object>();
    CgroupFileWrite write{RequireAbsolutePath(env, keys.Get(file, "path"), "cgroupSetup.files[].path"),
                          RequireString(env, keys.Get(file, "value"), "cgroupSetup.files[].value"),
                          RequireString(env, keys.Get(file, "readBack"), "cgroupSetup.files[].readBack"),
                          RequireBoolean(env, keys.Get(file, "mayFail"), "cgroupSetup.files[].mayFail")};
    const size_t slash = write.path.rfind('/');
    const std::string directory = write.path.substr(0, slash);
    const std::string name = write.path.substr(slash + 1);
    bool inside = directory == request.cgroup && !directory.empty();
    for (const std::string& v1 : request.cgroups_v1) inside = inside || directory == v1;
    if (!inside || name.empty() || name == "." || name == "..") {
      ThrowType(env, "cgroupSetup.files[].path must name a file directly inside cgroup or one of cgroupsV1");
    }
    request.cgroup_files.push_back(std::move(write));
  }
}

}  // namespace

Napi::Value PropertyKeys::Get(const Napi::Object& object, const char* name) {
  auto found = keys_.find(name);
  if (found == keys_.end()) {
    // An internalized string (Node-API 10), held by a reference (any value type since Node-API 10).
    napi_value key = nullptr;
    NAPI_THROW_IF_FAILED(object.Env(), node_api_create_property_key_utf8(object.Env(), name, NAPI_AUTO_LENGTH, &key),
                         Napi::Value());
    found = keys_.emplace(name, Napi::Persistent(Napi::String(object.Env(), key))).first;
  }
  return object.Get(found->second.Value());
}

std::shared_ptr<const std::vector<std::string>> EnvironmentSnapshot::Current() {
  size_t count = 0;
  bool same = entries_ != nullptr;
  for (char** entry = environ; *entry != nullptr; ++entry, ++count) {
    same = same && count < entries_->size() && std::strcmp(*entry, (*entries_)[count].c_str()) == 0;
  }
  if (same && count == entries_->size()) return entries_;
  auto entries = std::make_shared<std::vector<std::string>>();
  entries->reserve(count);
  for (char** entry = environ; *entry != nullptr; ++entry) entries->emplace_back(*entry);
  entries_ = std::move(entries);
  return entries_;
}

Napi::Function SpawnEngine::Define(Napi::Env env) {
  return DefineClass(env, "SpawnEngine",
                     {
                         InstanceMethod<&SpawnEngine::Spawn>("spawn"),
                         InstanceMethod<&SpawnEngine::Kill>("kill"),
                         InstanceMethod<&SpawnEngine::Stats>("stats"),
                         InstanceMethod<&SpawnEngine::Ref>("ref"),
                         InstanceMethod<&SpawnEngine::Unref>("unref"),
                         InstanceMethod<&SpawnEngine::Close>("close"),
                     });
}

SpawnEngine::SpawnEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SpawnEngine>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsObject()) ThrowType(env, "SpawnEngine takes one options object");
  Napi::Object options = info[0].As<Napi::Object>();

  const double threads = RequireNumber(env, options.Get("threads"), "threads");
  if (std::floor(threads) != threads || threads < 1 || threads > kMaxThreads) {
    ThrowType(env, "threads must be a whole number from 1 to " + std::to_string(kMaxThreads));
  }
  const std::string lock_mode = RequireString(env, options.Get("lockMode"), "lockMode");
  const std::string clone_path = RequireString(env, options.Get("clonePath"), "clonePath");
  Napi::Value on_events = options.Get("onEvents");
  if (!on_events.IsFunction()) ThrowType(env, "onEvents must be a function");

  SpawnerOptions spawner_options;
  spawner_options.threads = static_cast<int>(threads);
  if (lock_mode == "free") {
    spawner_options.lock_mode = LockMode::kFree;
  } else if (lock_mode == "xor") {
    spawner_options.lock_mode = LockMode::kXor;
  } else if (lock_mode == "serial") {
    spawner_options.lock_mode = LockMode::kSerial;
  } else {
    ThrowType(env, "lockMode must be 'free', 'xor' or 'serial'");
  }

  const Capabilities& capabilities = ProbeCapabilities();
  if (!capabilities.pidfd) {
    throw SystemError(env, ENOSYS, "waitid",
                      "parafork needs pidfds (Linux 5.4 or newer); this kernel is " + capabilities.kernel_release);
  }
  if (clone_path == "clone3") {
    if (!capabilities.clone3) {
      throw SystemError(env, ENOSYS, "clone3", "clone3 is refused here (a seccomp profile, or Linux < 5.3)");
    }
    spawner_options.clone_path = ClonePath::kClone3;
  } else if (clone_path == "clone") {
    spawner_options.clone_path = ClonePath::kClone;
  } else {
    ThrowType(env, "clonePath must be 'clone3' or 'clone'");
  }
  spawner_options.close_range_cloexec = capabilities.close_range_cloexec;
  spawner_options.clone_clear_sighand = capabilities.clone_clear_sighand;
  // withoutMountSetattr (tests only): build bind mounts as on a kernel before 5.12.
  Napi::Value without_mount_setattr = options.Get("withoutMountSetattr");
  spawner_options.mount_setattr = capabilities.mount_setattr &&
                                  !(without_mount_setattr.IsBoolean() && without_mount_setattr.As<Napi::Boolean>().Value());
  const std::string init_path = RequireString(env, options.Get("initPath"), "initPath");
  spawner_options.staging_directory = RequireString(env, options.Get("stagingDirectory"), "stagingDirectory");
  if (!init_path.empty()) {
    sandbox_resources_ = std::make_unique<SandboxResources>(init_path);
    spawner_options.sandbox_resources = sandbox_resources_.get();
  }

  events_ = EventBatcher::Create(env, on_events.As<Napi::Function>());
  try {
    log_pump_ = std::make_unique<LogPump>([events = events_](uint64_t id, const LogTotals& totals) {
      events->Push(LogClosedEvent(id, totals));
    });
    log_pump_->Start();
    spawner_options.log_pump = log_pump_.get();
    reaper_ = std::make_unique<Reaper>(children_, *events_);
    reaper_->Start();
    spawner_ = std::make_unique<Spawner>(spawner_options, children_, *reaper_, *events_);
    spawner_->Start();
    events_->SetBusyProbe([spawner = spawner_.get()] { return spawner->Saturated(); });
  } catch (const std::system_error& error) {
    Shutdown();
    throw SystemError(env, error.code().value(), error.what(), "the spawn engine could not start");
  }
  napi_add_env_cleanup_hook(env, &SpawnEngine::ShutdownAtEnvironmentExit, this);
}

SpawnEngine::~SpawnEngine() { Shutdown(); }

void SpawnEngine::ShutdownAtEnvironmentExit(void* engine) { static_cast<SpawnEngine*>(engine)->Shutdown(); }

void SpawnEngine::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  napi_remove_env_cleanup_hook(env_, &SpawnEngine::ShutdownAtEnvironmentExit, this);
  // Spawn threads first (they feed the reaper and the log pump), then those two, then the batcher
  // they all feed.
  if (spawner_) spawner_->Stop();
  if (log_pump_) log_pump_->Stop();
  if (reaper_) reaper_->Stop();
  if (events_ != nullptr) events_->Release();
}

// spawn({ id, file, searchPath, argv, env, cwd, stdoutMode, stdoutPath, stderrMode, stderrPath, logMaxBytes, cgroup,
//         cgroupsV1, cgroupSetup, sandbox })
// env: an array of "NAME=value", or null for the agent's own environment (main thread only).
Napi::Value SpawnEngine::Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint64_t enqueued_ns = MonotonicNanoseconds();
  if (shut_down_) throw SystemError(env, EBADF, "spawn", "the launcher is closed");
  if (info.Length() != 1 || !info[0].IsObject()) ThrowType(env, "spawn takes one request object");
  Napi::Object object = info[0].As<Napi::Object>();

  auto request = std::make_unique<SpawnRequest>();
  const double id = RequireNumber(env, keys_.Get(object, "id"), "id");
  if (std::floor(id) != id || id < 1) ThrowType(env, "id must be a positive whole number");
  request->id = static_cast<uint64_t>(id);
  request->file = RequireString(env, keys_.Get(object, "file"), "file");
  if (request->file.empty()) ThrowType(env, "file must not be empty");
  request->search_path = RequireString(env, keys_.Get(object, "searchPath"), "searchPath");
  request->argv = RequireStringArray(env, keys_.Get(object, "argv"), "argv");
  if (request->argv.empty()) ThrowType(env, "argv must hold at least argv[0]");
  Napi::Value environment = keys_.Get(object, "env");
  request->env = environment.IsNull() ? inherited_environment_.Current()
                                      : std::make_shared<const std::vector<std::string>>(
                                            RequireStringArray(env, environment, "env"));
  request->cwd = RequireString(env, keys_.Get(object, "cwd"), "cwd");
  request->stdout_target = RequireOutput(env, keys_, object, "stdoutMode", "stdoutPath");
  request->stderr_target = RequireOutput(env, keys_, object, "stderrMode", "stderrPath");
  RequireLog(env, keys_, object, *request);
  request->result_file = RequireBoolean(env, keys_.Get(object, "resultFile"), "resultFile");
  request->cgroup = RequireString(env, keys_.Get(object, "cgroup"), "cgroup");
  request->sandbox = RequireSandbox(env, keys_, masked_paths_, keys_.Get(object, "sandbox"));
  request->cgroups_v1 = RequireStringArray(env, keys_.Get(object, "cgroupsV1"), "cgroupsV1");
  RequireCgroupSetup(env, keys_, keys_.Get(object, "cgroupSetup"), *request);
  request->enqueued_ns = enqueued_ns;
  if (!spawner_->Enqueue(std::move(request))) throw SystemError(env, EBADF, "spawn", "the launcher is closed");
  return env.Undefined();
}

// kill(id, signal) -> 0 or an errno (ESRCH once the child has been reaped)
Napi::Value SpawnEngine::Kill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2) ThrowType(env, "kill takes an id and a signal number");
  const double id = RequireNumber(env, info[0], "id");
  const double signal_number = RequireNumber(env, info[1], "signal");
  if (std::floor(signal_number) != signal_number || signal_number < 0 || signal_number > 64) {
    ThrowType(env, "signal must be a whole number from 0 to 64");
  }
  const int result = children_.Signal(static_cast<uint64_t>(id), static_cast<int>(signal_number));
  return Napi::Number::New(env, result);
}

Napi::Value SpawnEngine::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object stats = Napi::Object::New(env);
  stats.Set("threads", Napi::Number::New(env, spawner_ ? spawner_->Threads() : 0));
  stats.Set("busyThreads", Napi::Number::New(env, spawner_ ? spawner_->BusyThreads() : 0));
  stats.Set("queued", Napi::Number::New(env, spawner_ ? static_cast<double>(spawner_->Queued()) : 0));
  stats.Set("children", Napi::Number::New(env, static_cast<double>(children_.Size())));
  const LogPumpStats logs = log_pump_ ? log_pump_->Stats() : LogPumpStats{};
  stats.Set("openLogs", Napi::Number::New(env, static_cast<double>(logs.open_logs)));
  stats.Set("logBytes", Napi::Number::New(env, static_cast<double>(logs.payload_bytes)));
  stats.Set("logDroppedBytes", Napi::Number::New(env, static_cast<double>(logs.dropped_bytes)));
  return stats;
}

Napi::Value SpawnEngine::Ref(const Napi::CallbackInfo& info) {
  if (!shut_down_) events_->Ref(info.Env());
  return info.Env().Undefined();
}

Napi::Value SpawnEngine::Unref(const Napi::CallbackInfo& info) {
  if (!shut_down_) events_->Unref(info.Env());
  return info.Env().Undefined();
}

Napi::Value SpawnEngine::Close(const Napi::CallbackInfo& info) {
  Shutdown();
  return info.Env().Undefined();
}

}  // namespace parafork
