// The sandbox's default system-call policy, compiled once into a classic BPF program with
// libseccomp and loaded by each sandboxed child (seccomp(2)) as its last step before exec.
//
// An allow-list at least as strict as Docker's default profile: anything not listed fails with
// EPERM; clone3 fails with ENOSYS (so libc falls back to clone, whose flags a filter can see) and
// clone may not create namespaces. Not allowed, among others: mount and the new mount API,
// pivot_root, chroot, unshare, setns, ptrace, process_vm_*, bpf, perf_event_open, keyctl,
// add_key, request_key, kernel modules, kexec, reboot, swapon/swapoff, io_uring, userfaultfd,
// open_by_handle_at, clock and time setting, acct, quotactl, syslog.
#pragma once

#include <linux/filter.h>

#include <string>
#include <vector>

namespace parafork {

// Move-only: `program` points into `instructions`, whose buffer a move hands over intact and a
// copy would not.
struct SeccompProgram {
  std::vector<sock_filter> instructions;
  sock_fprog program{};  // points into `instructions`: fixed up by Finish()

  SeccompProgram() = default;
  SeccompProgram(const SeccompProgram&) = delete;
  SeccompProgram& operator=(const SeccompProgram&) = delete;
  SeccompProgram(SeccompProgram&&) = default;
  SeccompProgram& operator=(SeccompProgram&&) = default;

  bool empty() const { return instructions.empty(); }

  void Finish() {
    program.len = static_cast<unsigned short>(instructions.size());
    program.filter = instructions.data();
  }
};

// Builds the default policy for this architecture. Throws std::runtime_error with libseccomp's
// complaint if it cannot.
SeccompProgram BuildDefaultSeccompProgram();

}  // namespace parafork
