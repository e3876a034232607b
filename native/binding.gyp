{
  "targets": [
    {
      "target_name": "parafork",
      "sources": [
        "src/addon.cc",
        "src/capabilities.cc",
        "src/cgroup_join.cc",
        "src/cgroup_state_cache.cc",
        "src/child.cc",
        "src/child_fd_slots.cc",
        "src/child_table.cc",
        "src/clone3_entry.S",
        "src/engine.cc",
        "src/errors.cc",
        "src/event.cc",
        "src/event_batcher.cc",
        "src/event_queue.cc",
        "src/exec_search.cc",
        "src/file_lock.cc",
        "src/log_file.cc",
        "src/log_pump.cc",
        "src/network_namespace_leftovers.cc",
        "src/user_keyrings.cc",
        "src/network_namespace_pool.cc",
        "src/reaper.cc",
        "src/sandbox_masks.cc",
        "src/sandbox_preparation.cc",
        "src/sandbox_resources.cc",
        "src/seccomp_attach_point.cc",
        "src/seccomp_policy.cc",
        "src/seccomp_profile.cc",
        "src/spawner.cc",
        "src/stdio_preparation.cc",
        "src/thread_priority.cc",
        "src/user_namespace_handshake.cc",
        "src/xor_lock.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=10", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-fstack-protector-strong", "-fvisibility=hidden"],
      "cflags_cc": ["-std=c++20", "-fexceptions", "-Wno-missing-field-initializers"],
      "ldflags": ["-pthread"],
      "libraries": ["-lseccomp"]
    },
    {
      "target_name": "parafork-init",
      "type": "executable",
      "sources": ["src/init/parafork_init.c"],
      "cflags!": ["-fstack-protector-strong", "-pthread"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror", "-ffreestanding", "-fno-stack-protector",
                 "-fno-tree-loop-distribute-patterns", "-fno-asynchronous-unwind-tables"],
      "ldflags!": ["-pthread", "-rdynamic"],
      "ldflags": ["-static", "-nostdlib", "-Wl,--build-id=none"]
    }
  ]
}
