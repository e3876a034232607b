// The object JavaScript holds: one spawn thread pool, one reaper, one event batcher. It checks and
// unpacks every argument on the JS thread (again: TypeScript checked them first, and wrong types
// reaching C++ make hard-to-diagnose crashes), then only enqueues.
#pragma once

#include <napi.h>

#include <memory>

#include "child_table.h"
#include "event_batcher.h"
#include "reaper.h"
#include "sandbox_resources.h"
#include "spawner.h"

namespace parafork {

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
  ChildTable children_;
  EventBatcher* events_ = nullptr;  // deletes itself once released (see event_batcher.h)
  std::unique_ptr<SandboxResources> sandbox_resources_;  // before the spawner, which points into it
  std::unique_ptr<Reaper> reaper_;
  std::unique_ptr<Spawner> spawner_;
  bool shut_down_ = false;
};

}  // namespace parafork
