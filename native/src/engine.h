// The object JavaScript holds: one spawn thread pool, one reaper, one log pump, one event batcher. It checks and
// unpacks every argument on the JS thread (again: TypeScript checked them first, and wrong types
// reaching C++ make hard-to-diagnose crashes), then only enqueues.
#pragma once

#include <napi.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "child_table.h"
#include "event_batcher.h"
#include "log_pump.h"
#include "reaper.h"
#include "sandbox_resources.h"
#include "spawner.h"

namespace parafork {

// The request's property names as JavaScript strings, made once: napi_get_named_property turns its C
// string into an internalized V8 string on every call, and a sandboxed spawn reads 30-odd properties.
// JS thread only.
class PropertyKeys {
 public:
  // `name` must be a string literal: the key is kept by pointer to its characters.
  Napi::Value Get(const Napi::Object& object, const char* name);

 private:
  std::unordered_map<std::string_view, Napi::Reference<Napi::String>> keys_;
};

// The agent's own environment for children that inherit it, read on the JS thread. On Node's main
// thread process.env writes go through setenv(3) to this same `environ`, and only the JS thread
// writes it, so a copy matches process.env at the moment of the call. The copy is kept and shared by
// every request until `environ` reads differently: comparing costs well under a microsecond, copying
// 30-odd strings a spawn several, and walking process.env from JavaScript 20+.
class EnvironmentSnapshot {
 public:
  std::shared_ptr<const std::vector<std::string>> Current();

 private:
  std::shared_ptr<const std::vector<std::string>> entries_;
};

class SpawnEngine : public Napi::ObjectWrap<SpawnEngine> {
 public:
  static Napi::Function Define(Napi::Env env);

  // new SpawnEngine({ threads, lockMode, clonePath, onEvents })
  explicit SpawnEngine(const Napi::CallbackInfo& info);
  ~SpawnEngine() override;

 private:
  Napi::Value Spawn(const Napi::CallbackInfo& info);
  Napi::Value Kill(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  void Shutdown();
  static void ShutdownAtEnvironmentExit(void* engine);

  Napi::Env env_;
  PropertyKeys keys_;
  EnvironmentSnapshot inherited_environment_;
  MaskedPathsCache masked_paths_;
  ChildTable children_;
  EventBatcher* events_ = nullptr;  // deletes itself once released (see event_batcher.h)
  std::unique_ptr<SandboxResources> sandbox_resources_;  // before the spawner, which points into it
  std::unique_ptr<LogPump> log_pump_;  // before the spawner, which hands it pipes
  std::unique_ptr<Reaper> reaper_;
  std::unique_ptr<Spawner> spawner_;
  bool shut_down_ = false;
};

}  // namespace parafork
