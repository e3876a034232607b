// See seccomp_policy.h. The allow-list is ours, written from the system calls ordinary programs
// (shells, interpreters, compilers, servers) make; names unknown on this architecture are skipped.
// No system call is allowed unless listed here (or allowed with conditions below).
#include "seccomp_policy.h"

#include <linux/audit.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/syscall.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <iterator>
#include <set>
#include <stdexcept>

namespace parafork {

namespace {

constexpr const char* kAllowedSyscalls[] = {
    // files and directories
    "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range", "creat", "dup", "dup2",
    "dup3", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fchdir", "fchmod", "fchmodat",
    "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock",
    "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
    "ftruncate64", "futimesat", "getcwd", "getdents", "getdents64", "getxattr", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listxattr", "llistxattr",
    "lremovexattr", "lseek", "_llseek", "lsetxattr", "lstat", "lstat64", "mkdir", "mkdirat", "mknod", "mknodat",
    "newfstatat", "open", "openat", "openat2", "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2",
    "read", "readahead", "readlink", "readlinkat", "readv", "removexattr", "rename", "renameat", "renameat2", "rmdir",
    "sendfile", "sendfile64", "setxattr", "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink",
    "symlinkat", "sync", "sync_file_range", "syncfs", "tee", "truncate", "truncate64", "umask", "unlink", "unlinkat",
    "utime", "utimensat", "utimensat_time64", "utimes", "vmsplice", "write", "writev",
    // memory
    "brk", "madvise", "membarrier", "memfd_create", "mincore", "mlock", "mlock2", "mlockall", "mmap", "mmap2",
    "mprotect", "mremap", "msync", "munlock", "munlockall", "munmap", "pkey_alloc", "pkey_free", "pkey_mprotect",
    "remap_file_pages",
    // processes, threads, signals
    "arch_prctl", "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "get_robust_list",
    "get_thread_area", "getcpu", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getitimer", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getresgid", "getresgid32",
    "getresuid", "getresuid32", "getrlimit", "getrusage", "getsid", "gettid", "getuid", "getuid32", "ioprio_get",
    "ioprio_set", "kill", "pause", "pidfd_open", "pidfd_send_signal", "prctl", "prlimit64", "restart_syscall", "rseq",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield", "seccomp", "set_robust_list", "set_thread_area", "set_tid_address",
    "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
    "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32",
    "setreuid", "setreuid32", "setrlimit", "setsid", "setuid", "setuid32", "sigaltstack", "signalfd", "signalfd4",
    "sigreturn", "tgkill", "tkill", "ugetrlimit", "vfork", "wait4", "waitid", "waitpid",
    // time
    "alarm", "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "gettimeofday", "nanosleep", "time", "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
    "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
    // waiting and events
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait", "eventfd", "eventfd2",
    "futex", "futex_time64", "futex_waitv", "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_setup",
    "io_submit", "pipe", "pipe2", "poll", "ppoll", "ppoll_time64", "pselect6", "pselect6_time64", "select",
    "_newselect",
    // sockets (privileged kinds, such as raw sockets, still need capabilities the task does not have)
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen", "recv", "recvfrom",
    "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg", "sendto", "setsockopt", "shutdown",
    "socket", "socketcall", "socketpair",
    // System V IPC and POSIX message queues (the task has its own IPC namespace)
    "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
    "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop",
    "semtimedop", "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget",
    // information and small things
    "getrandom", "ioctl", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "sysinfo",
    "uname",
};

// personality(2) values that change nothing dangerous: PER_LINUX, UNAME26, PER_LINUX32, and the query.
constexpr unsigned long kAllowedPersonalities[] = {0x0, 0x0008, 0x20000, 0xffffffff};

constexpr uint32_t kNamespaceFlags =
    CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;

#if defined(__x86_64__)
constexpr uint32_t kNativeArchitecture = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kNativeArchitecture = AUDIT_ARCH_AARCH64;
#else
#error "parafork's seccomp policy supports x86_64 and aarch64"
#endif

constexpr uint32_t kAllow = SECCOMP_RET_ALLOW;
constexpr uint32_t kDeny = SECCOMP_RET_ERRNO | EPERM;
constexpr uint32_t kNotImplemented = SECCOMP_RET_ERRNO | ENOSYS;
constexpr uint32_t kArgumentLowWord = offsetof(seccomp_data, args);  // args[0], low 32 bits (little-endian)

sock_filter Statement(uint16_t code, uint32_t value) { return BPF_STMT(code, value); }
sock_filter Jump(uint16_t code, uint32_t value, uint8_t if_true, uint8_t if_false) {
  return BPF_JUMP(code, value, if_true, if_false);
}

// The allowed numbers as sorted, merged ranges [first, last].
std::vector<std::pair<uint32_t, uint32_t>> AllowedRanges(std::initializer_list<int> excluded) {
  std::set<uint32_t> numbers;
  for (const char* name : kAllowedSyscalls) {
    const int number = seccomp_syscall_resolve_name(name);
    if (number < 0) continue;  // __NR_SCMP_ERROR, or a pseudo number: not on this architecture
    if (std::find(excluded.begin(), excluded.end(), number) != excluded.end()) continue;
    numbers.insert(static_cast<uint32_t>(number));
  }
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  for (uint32_t number : numbers) {
    if (!ranges.empty() && ranges.back().second + 1 == number) {
      ranges.back().second = number;
    } else {
      ranges.emplace_back(number, number);
    }
  }
  return ranges;
}

}  // namespace

// The program, written out rather than exported from libseccomp: the kernel converts and compiles
// a filter at every attach, about 1.3 us an instruction here, and libseccomp's one comparison per
// system call (~360 instructions, ~0.5 ms a spawn) becomes ~150 as ranges of numbers. libseccomp
// still names the numbers for this architecture.
SeccompProgram BuildDefaultSeccompProgram() {
  SeccompProgram result;
  std::vector<sock_filter>& program = result.instructions;
  // Another architecture's system calls (an i386 binary on x86_64) would be read with our numbers.
  program.push_back(Statement(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  program.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, kNativeArchitecture, 1, 0));
  program.push_back(Statement(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  program.push_back(Statement(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
#if defined(__x86_64__)
  // The x32 ABI sets this bit on its numbers.
  program.push_back(Jump(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1));
  program.push_back(Statement(BPF_RET | BPF_K, kDeny));
#endif
  // clone3 keeps its flags in memory a filter cannot read: "not implemented", so libc uses clone.
  program.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1));
  program.push_back(Statement(BPF_RET | BPF_K, kNotImplemented));
  // clone: threads and processes, never new namespaces (the flags are its first argument).
  program.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4));
  program.push_back(Statement(BPF_LD | BPF_W | BPF_ABS, kArgumentLowWord));
  program.push_back(Jump(BPF_JMP | BPF_JSET | BPF_K, kNamespaceFlags, 0, 1));
  program.push_back(Statement(BPF_RET | BPF_K, kDeny));
  program.push_back(Statement(BPF_RET | BPF_K, kAllow));
  // personality: only the harmless values (its argument is an int).
  program.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_personality, 0, 2 + 2 * std::size(kAllowedPersonalities)));
  program.push_back(Statement(BPF_LD | BPF_W | BPF_ABS, kArgumentLowWord));
  for (unsigned long persona : kAllowedPersonalities) {
    program.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(persona), 0, 1));
    program.push_back(Statement(BPF_RET | BPF_K, kAllow));
  }
  program.push_back(Statement(BPF_RET | BPF_K, kDeny));
  // The ranges, ascending: a number above this range goes on to the next; one below it fell in
  // the gap before it and is refused.
  for (const auto& [first, last] : AllowedRanges({__NR_clone, __NR_clone3, __NR_personality})) {
    program.push_back(Jump(BPF_JMP | BPF_JGT | BPF_K, last, 3, 0));
    program.push_back(Jump(BPF_JMP | BPF_JGE | BPF_K, first, 0, 1));
    program.push_back(Statement(BPF_RET | BPF_K, kAllow));
    program.push_back(Statement(BPF_RET | BPF_K, kDeny));
  }
  program.push_back(Statement(BPF_RET | BPF_K, kDeny));
  if (program.size() > BPF_MAXINSNS) throw std::runtime_error("seccomp: the program is too long");
  result.Finish();
  return result;
}

}  // namespace parafork
