// See seccomp_policy.h. The allow-list is ours, written from the system calls ordinary programs
// (shells, interpreters, compilers, servers) make; names unknown on this architecture are skipped.
// No system call is allowed unless listed here (or allowed with conditions below).
#include "seccomp_policy.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/fs.h>
#include <linux/kd.h>
#include <linux/seccomp.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace parafork {

namespace {

constexpr const char* kAllowedSyscalls[] = {
    // files and directories
    "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range", "creat", "dup", "dup2",
    "dup3", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fchdir", "fchmod", "fchmodat",
    "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock",
    "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
    "ftruncate64", "futimesat", "getcwd", "getdents", "getdents64", "getxattr", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listxattr", "llistxattr",
    "lremovexattr", "lseek", "_llseek", "lsetxattr", "lstat", "lstat64", "mkdir", "mkdirat", "mknod", "mknodat",
    "newfstatat", "open", "openat", "openat2", "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2",
    "read", "readahead", "readlink", "readlinkat", "readv", "removexattr", "rename", "renameat", "renameat2", "rmdir",
    "sendfile", "sendfile64", "setxattr", "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink",
    "symlinkat", "sync", "sync_file_range", "syncfs", "tee", "truncate", "truncate64", "umask", "unlink", "unlinkat",
    "utime", "utimensat", "utimensat_time64", "utimes", "vmsplice", "write", "writev",
    // memory (map_shadow_stack: glibc's shadow stacks; mseal: a process sealing its own mappings)
    "brk", "madvise", "map_shadow_stack", "membarrier", "mincore", "mlock", "mlock2", "mlockall", "mmap2", "mprotect", "mremap", "mseal", "msync", "munlock", "munlockall", "munmap", "pkey_alloc",
    "pkey_free", "pkey_mprotect", "remap_file_pages",
    // processes, threads, signals
    "arch_prctl", "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "get_robust_list",
    "get_thread_area", "getcpu", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getitimer", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getresgid", "getresgid32",
    "getresuid", "getresuid32", "getrlimit", "getrusage", "getsid", "gettid", "getuid", "getuid32", "ioprio_get",
    "ioprio_set", "kill", "pause", "pidfd_open", "pidfd_send_signal", "restart_syscall", "rseq",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield", "set_robust_list", "set_thread_area", "set_tid_address",
    "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
    "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32",
    "setreuid", "setreuid32", "setsid", "setuid", "setuid32", "sigaltstack", "signalfd", "signalfd4",
    "sigreturn", "tgkill", "tkill", "ugetrlimit",
    "uretprobe",  // only the kernel's own return-probe trampoline can make it (a host's tracing)
    "vfork", "wait4", "waitid", "waitpid",
    // time
    "alarm", "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "gettimeofday", "nanosleep", "time", "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
    "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
    // waiting and events
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait", "eventfd", "eventfd2",
    "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "pipe", "pipe2", "poll", "ppoll", "ppoll_time64",
    "pselect6", "pselect6_time64", "select", "_newselect",
    // prctl has a rule of its own, below.
    // sockets (socket, socketpair and setsockopt have a rule of their own, below; privileged kinds, such as raw
    // sockets, still need capabilities the task does not have). Not socketcall(2), which takes its
    // arguments in memory a filter cannot read: x86_64 and aarch64 have no such call, and the
    // 32-bit ABIs that do are refused as a whole.
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen", "recv", "recvfrom",
    "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg", "sendto", "shutdown",
    // System V IPC and POSIX message queues (the task has its own IPC namespace)
    "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
    "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop",
    "semtimedop", "semtimedop_time64", "shmat", "shmctl", "shmdt",
    // information and small things
    "getrandom", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "sysinfo",
    "uname",
};

// personality(2) values that change nothing dangerous: PER_LINUX, PER_LINUX32, UNAME26, and the
// query. Not READ_IMPLIES_EXEC or ADDR_NO_RANDOMIZE, which weaken the task's own defences.
// Answered "not implemented", so that libc and libraries take their fallback. clone3 keeps its
// flags in memory a filter cannot read: libc then uses clone. Native AIO contexts count against
// fs.aio-max-nr, one counter for the whole node that no cgroup, rlimit or namespace divides (Docker
// allows them): one task held all 65536 in 16 calls and every other task's and the node's io_setup
// failed with EAGAIN (red team, seccomp-default-policy.test.ts); ENOSYS is what a kernel built
// without AIO answers, and glibc's POSIX AIO uses threads anyway.
//
// inotify likewise (red team, session 16): a watch is a mark on the watched inode, and every open,
// read and close of that inode by any process walks its marks and allocates an event for each one
// (fs/notify/inotify/inotify_fsnotify.c), whether anyone reads them or not. A default task's root
// is the node's own, so its watches sit on the node's hot inodes (libc, ld.so.cache, /etc), and its
// uid's 128 instances (fs.inotify.max_user_instances, per uid: each task has a uid of its own) put
// 128 marks on each: eight tasks that did so and slept made each process start on the node 10-20x
// slower (a /bin/true: 0.6-1.2 ms, 9-12 ms beside them; 24.5 ms beside sixteen) and their
// neighbours' spawns 0.2x as many a second (sandbox-file-watches.test.ts, docs/security.md).
// ENOSYS is what a kernel built without inotify answers; tail -f, libuv and most watchers fall back
// to polling. fanotify, which needs CAP_SYS_ADMIN anyway, is refused with the rest.
constexpr const char* kNotImplementedSyscalls[] = {"clone3",      "io_setup",          "io_destroy",     "io_submit",
                                                   "io_getevents", "io_cancel",         "io_pgetevents",  "inotify_init",
                                                   "inotify_init1", "inotify_add_watch", "inotify_rm_watch"};

// Huge pages come from the node's pool (vm.nr_hugepages), which no memory limit counts (memory.max
// leaves hugetlb out) and which the kubelet keeps from Pods that ask for none: a task mapped all of
// it (red team, seccomp-default-policy.test.ts). EPERM is what mmap(2) and memfd_create(2) document
// for a caller not allowed huge pages; programs fall back to ordinary pages. (mmap2, on 32-bit
// architectures only, is not among those this policy supports.)
//
// A read with RWF_NOWAIT (preadv2(2)) fails with EAGAIN when its data is not in the page cache and
// succeeds when it is, without touching the disk: an oracle, page by page, of whether the node or
// a neighbour read a file of the shared root the task may read (red team, session 11,
// sandbox-page-cache.test.ts), as mincore(2) was before Linux 5.0 and cachestat(2) is (refused).
// EOPNOTSUPP is the kernel's answer for a file that cannot do it; callers then read as usual.
constexpr RefusedFlagsRule kRefusedFlagsRules[] = {{"mmap", 3, MAP_HUGETLB, EPERM},
                                                   {"memfd_create", 1, MFD_HUGETLB, EPERM},
                                                   {"shmget", 2, SHM_HUGETLB, EPERM},
                                                   {"preadv2", 5, RWF_NOWAIT, EOPNOTSUPP}};

constexpr uint32_t kAllowedPersonalities[] = {0x0, 0x0008, 0x20000, 0xffffffff};

// The only socket families a task may create (socket(2), socketpair(2)): what ordinary programs
// use. Unix sockets, IPv4 and IPv6. Every other family answers EAFNOSUPPORT, the kernel's own
// answer for a family it was built without, which programs already expect. Not netlink: the
// buffers in a netlink socket's receive queue are charged to no memory cgroup (a unix socket's
// are), a task's socket may send to itself (NETLINK_USERSOCK) or have the kernel queue answers,
// each up to twice net.core.rmem_max, and a default task held 66 MB in 8 sockets with 5 MiB
// charged to its 64 MiB cgroup: at 1,024 fds a process and 1,024 processes, the node's memory many
// times over (red team, session 13, sandbox-netlink-memory.test.ts). In a task's own network
// namespace netlink showed `lo` and little else; getifaddrs(3) now fails (glibc's getaddrinfo
// does without it). The rest are devices and protocols a task has no use for:
// AF_VSOCK (its ports belong to the machine, not to a network namespace: a task that binds one
// takes it from the node, issue 12), AF_PACKET and AF_XDP (need CAP_NET_RAW, which a task never
// has), AF_ALG (the kernel's crypto API, CVE-2026-31431), and rare protocols whose modules the kernel loads on first use (the source of many
// kernel CVEs: DCCP, RDS, TIPC, ...), a request the filter stops before the kernel sees it.
constexpr uint32_t kAllowedSocketFamilies[] = {AF_UNIX, AF_INET, AF_INET6};

// Inside AF_INET and AF_INET6 (red team, session 15): the socket types and protocols ordinary
// programs use, the rest answered as the kernel answers a type (ESOCKTNOSUPPORT) or protocol
// (EPROTONOSUPPORT) it was built without. The kernel reaches every protocol built in (MPTCP and
// UDP-Lite on the test VM: rarely used code, a source of CVEs), and where it has modules,
// inet_create() answers an unknown type or protocol with request_module(), which runs modprobe as
// root in the node's namespaces and cgroup for each such call, module or not, and loads SCTP, DCCP,
// L2TP, ... where they exist. Let through: TCP (SOCK_STREAM with 0 or IPPROTO_TCP), UDP
// (SOCK_DGRAM with 0 or IPPROTO_UDP), ping sockets (SOCK_DGRAM with ICMP in AF_INET and ICMPv6 in
// AF_INET6 only: the other pairing is a module request too), SOCK_RAW (any protocol matches the raw
// socket; the kernel refuses it without CAP_NET_RAW) and a type past SOCK_MAX (the kernel's EINVAL,
// before any lookup). The type's flags (SOCK_NONBLOCK, SOCK_CLOEXEC) are above SOCK_TYPE_MASK.
constexpr uint32_t kInternetFamilies[] = {AF_INET, AF_INET6};
constexpr uint32_t kSocketTypeMask = 0xf;  // SOCK_TYPE_MASK
constexpr uint32_t kSocketTypeLimit = 11;  // SOCK_MAX
constexpr uint32_t kStreamProtocols[] = {0, IPPROTO_TCP};
constexpr uint32_t kDatagramProtocols[] = {0, IPPROTO_UDP};

// ioctl(2) requests refused on any fd: those that inject input into a terminal or take over a
// console, which a task could otherwise aim at a terminal it inherited (issue 12). TIOCSTI pushes
// bytes into a terminal's input queue, to be run by the shell reading it; TIOCLINUX's subcodes
// paste a console selection and more; TIOCCONS redirects console output; TIOCSETD attaches a line
// discipline (kernel code few programs reach, with a history of CVEs); KDSKBENT and KDSKBSENT
// redefine what a virtual console's keys and function keys type. The kernel already asks for
// privilege or for the terminal to be the caller's controlling one for most of these; the
// filter refuses them whatever the kernel and the task's session. ioctl_tty(2), ioctl_console(2).
constexpr uint32_t kRefusedIoctlRequests[] = {TIOCSTI, TIOCLINUX, TIOCCONS, TIOCSETD, KDSKBENT, KDSKBSENT};

// The rlimit a task may not change (setrlimit(2), prlimit64(2)): RLIMIT_CORE, which the sandbox sets
// to 1. For a pipe in kernel.core_pattern the kernel ignores the limit and starts the node's crash
// handler as root for a crashing process, except at exactly 1, its guard against a crashing handler
// (fs/coredump.c, coredump_pipe()); for a file pattern 1 is below a page and writes nothing. A task
// cannot raise the hard limit (no CAP_SYS_RESOURCE) but could lower the soft one to 0, crash, and
// have the handler run (sandbox-crash-handler.test.ts). Setting it answers success and changes
// nothing: a task that sets it turns core dumps off, which they are, and ssh-agent and gpg-agent
// stop when they cannot. A prlimit64 that also asks for the old value is refused (EPERM): success
// would leave that value unwritten. Reading it (getrlimit, prlimit64 without a new value) is allowed.
constexpr uint32_t kFixedResourceLimit = RLIMIT_CORE;

// posix_fadvise(2) advice not taken, answered 0: POSIX_FADV_DONTNEED drops a file's clean, unmapped
// pages from the page cache whoever cached them, for any file the caller may open. A task evicted
// the node's pages of a file it could only read (red team, session 11, sandbox-page-cache.test.ts):
// the eviction half of a page-cache side channel, which the kernel keeps MADV_PAGEOUT from (only a
// file's owner or writer: mm/madvise.c, can_do_file_pageout), and interference with the node's
// cache. Advice: a caller cannot tell it from a kernel that keeps the pages (its own are reclaimed
// by its memory limit).
constexpr uint32_t kDroppedFileAdvice = POSIX_FADV_DONTNEED;

// fcntl(2) F_NOTIFY (dnotify), answered EINVAL as by a kernel built without it: the same marks as
// inotify's on the directories of the node's root a task may open, one entry each per fd, every
// one walked (and signalled, if its mask matches) for each event in that directory, and bounded
// by nothing but the task's fds and processes: four processes of a default task that set it on
// /etc and /usr/lib/x86_64-linux-gnu 1,000 times each made a process start on the node 2.5-3.4x
// slower (red team, session 16, sandbox-file-watches.test.ts).
constexpr uint32_t kRefusedFcntlCommand = F_NOTIFY;

// Classic BPF programs a task would hand the kernel: the kernel compiles each to machine code and
// counts that code against net.core.bpf_jit_limit, one budget for the whole node that no cgroup,
// rlimit or namespace divides. Once it is full, a compile by a process without CAP_BPF or
// CAP_SYS_ADMIN fails, and with CONFIG_BPF_JIT_ALWAYS_ON (Debian's, Ubuntu's, Fedora's kernels)
// so does the attach: the sandbox attaches each task's filter after dropping its capabilities, so
// no task could start (ENOTSUPP), nor could the node's unprivileged users of socket or seccomp
// filters (red team, session 13, sandbox-bpf-programs.test.ts: one default task, 1,024 sockets a
// process, fills the 504 MiB of a 24 GiB node with 20 processes). Socket filters: setsockopt at
// SOL_SOCKET with these options, refused (EPERM); SO_ATTACH_BPF and SO_ATTACH_REUSEPORT_EBPF take
// a bpf(2) program, which no task can make. Seccomp filters: seccomp(2) and prctl(PR_SET_SECCOMP)
// answer EINVAL, as a kernel built without seccomp filters does, so programs that sandbox
// themselves where they can (man-db, sshd) go on without; the task's own filter stays.
constexpr uint32_t kRefusedSocketFilterOptions[] = {SO_ATTACH_FILTER, SO_ATTACH_REUSEPORT_CBPF};
constexpr const char* kInvalidArgumentSyscalls[] = {"seccomp"};
constexpr uint32_t kRefusedPrctlOption = PR_SET_SECCOMP;

constexpr uint32_t kNamespaceFlags =
    CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;

// The other ABI the kernel may run a task's calls with (i386 on x86_64, AArch32 on arm64), and the
// x32 ABI's bit on x86_64 numbers: the guard below reads their setrlimit and prlimit64 too, as no
// filter kills them under Unconfined.
#if defined(__x86_64__)
constexpr uint32_t kNativeArchitecture = AUDIT_ARCH_X86_64;
constexpr uint32_t kCompatArchitecture = AUDIT_ARCH_I386;
constexpr uint32_t kCompatScmpArchitecture = SCMP_ARCH_X86;
constexpr uint32_t kX32SyscallBit = 0x40000000;
#elif defined(__aarch64__)
constexpr uint32_t kNativeArchitecture = AUDIT_ARCH_AARCH64;
constexpr uint32_t kCompatArchitecture = AUDIT_ARCH_ARM;
constexpr uint32_t kCompatScmpArchitecture = SCMP_ARCH_ARM;
constexpr uint32_t kX32SyscallBit = 0;
#else
#error "parafork's seccomp policy supports x86_64 and aarch64"
#endif
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "an argument's low 32 bits come first");

constexpr uint32_t kAllow = SECCOMP_RET_ALLOW;
constexpr uint32_t kDeny = SECCOMP_RET_ERRNO | EPERM;
constexpr uint32_t kNotImplemented = SECCOMP_RET_ERRNO | ENOSYS;
constexpr uint32_t kFamilyNotSupported = SECCOMP_RET_ERRNO | EAFNOSUPPORT;
constexpr uint32_t kSocketTypeNotSupported = SECCOMP_RET_ERRNO | ESOCKTNOSUPPORT;
constexpr uint32_t kProtocolNotSupported = SECCOMP_RET_ERRNO | EPROTONOSUPPORT;
constexpr uint32_t kInvalidArgument = SECCOMP_RET_ERRNO | EINVAL;
constexpr uint32_t kSkippedAsDone = SECCOMP_RET_ERRNO | 0;  // the call is not made and returns 0

// The low 32 bits of an argument: the kernel reads these arguments as int or unsigned int and
// drops the high bits, so a filter comparing all 64 would let `socket(AF_VSOCK | 1 << 32, ...)`
// through (CVE-2019-10063, TIOCSTI in Flatpak).
constexpr uint32_t ArgumentLowWord(int index) {
  return offsetof(seccomp_data, args) + static_cast<uint32_t>(index) * sizeof(uint64_t);
}
// The high 32 bits of an argument, for pointers, which the kernel reads whole.
constexpr uint32_t ArgumentHighWord(int index) { return ArgumentLowWord(index) + sizeof(uint32_t); }

// Classic BPF with named jump targets. A jump goes forward only, at most 255 instructions; Finish
// resolves the names to offsets and throws if one is out of reach.
class ProgramWriter {
 public:
  using Label = size_t;
  static constexpr Label kNext = 0;  // the instruction that follows

  Label NewLabel() {
    label_positions_.push_back(kUnbound);
    return label_positions_.size() - 1;
  }
  void Bind(Label label) { label_positions_.at(label) = instructions_.size(); }

  void LoadWord(uint32_t offset) { Add(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset), kNext, kNext); }
  void Return(uint32_t action) { Add(BPF_STMT(BPF_RET | BPF_K, action), kNext, kNext); }
  void AndWith(uint32_t mask) { Add(BPF_STMT(BPF_ALU | BPF_AND | BPF_K, mask), kNext, kNext); }
  // BPF_JEQ, BPF_JGE or BPF_JSET against `value`.
  void JumpIf(uint16_t comparison, uint32_t value, Label if_true, Label if_false) {
    Add(BPF_JUMP(BPF_JMP | comparison | BPF_K, value, 0, 0), if_true, if_false);
  }
  // To `if_any` when the loaded word equals one of `values`, else to `otherwise`.
  template <size_t count>
  void JumpIfAny(const uint32_t (&values)[count], Label if_any, Label otherwise) {
    for (size_t index = 0; index < count; ++index) {
      JumpIf(BPF_JEQ, values[index], if_any, index + 1 < count ? kNext : otherwise);
    }
  }

  std::vector<sock_filter> Finish() {
    for (size_t index = 0; index < instructions_.size(); ++index) {
      if (BPF_CLASS(instructions_[index].code) != BPF_JMP) continue;
      instructions_[index].jt = Offset(index, targets_[index].first);
      instructions_[index].jf = Offset(index, targets_[index].second);
    }
    return std::move(instructions_);
  }

 private:
  static constexpr size_t kUnbound = SIZE_MAX;

  void Add(sock_filter instruction, Label if_true, Label if_false) {
    instructions_.push_back(instruction);
    targets_.emplace_back(if_true, if_false);
  }
  uint8_t Offset(size_t from, Label to) const {
    if (to == kNext) return 0;
    const size_t position = label_positions_.at(to);
    if (position == kUnbound || position <= from || position - from - 1 > UINT8_MAX) {
      throw std::runtime_error("seccomp: a jump of the default program is out of reach");
    }
    return static_cast<uint8_t>(position - from - 1);
  }

  std::vector<sock_filter> instructions_;
  std::vector<std::pair<Label, Label>> targets_;
  std::vector<size_t> label_positions_{kUnbound};  // kNext is never bound
};

// From `first` on (up to the next segment's first number), system calls go to `target`.
struct Segment {
  uint32_t first;
  ProgramWriter::Label target;
};

// Every number from 0 to 2^32-1 as consecutive segments, each going to the label of its system
// call's rule: `allow` for the allow-list, the special rules' own labels, `deny` for the gaps.
// Neighbours with the same target merge. Numbers this architecture does not have are gaps: a
// later kernel may give them a system call.
std::vector<Segment> SegmentsOf(const std::map<uint32_t, ProgramWriter::Label>& rules, ProgramWriter::Label deny) {
  std::vector<Segment> segments{{0, deny}};
  auto start_segment = [&](uint32_t first, ProgramWriter::Label target) {
    if (segments.back().target == target) return;
    if (segments.back().first == first) {
      segments.pop_back();
      if (!segments.empty() && segments.back().target == target) return;
    }
    segments.push_back({first, target});
  };
  for (const auto& [number, target] : rules) {
    start_segment(number, target);
    start_segment(number + 1, deny);
  }
  return segments;
}

// A binary search over the segments [low, high]: one comparison per boundary, so the kernel
// (which runs the program for every system call number when it attaches it, to cache the
// always-allowed ones) walks ~7 instructions per number instead of one per range.
void EmitSearch(ProgramWriter& writer, const std::vector<Segment>& segments, size_t low, size_t high) {
  const size_t middle = (low + high + 1) / 2;
  auto target_of = [&](size_t first, size_t last) {
    return first == last ? segments[first].target : writer.NewLabel();
  };
  const ProgramWriter::Label above = target_of(middle, high);
  const ProgramWriter::Label below = target_of(low, middle - 1);
  writer.JumpIf(BPF_JGE, segments[middle].first, above, below);
  if (low < middle - 1) {
    writer.Bind(below);
    EmitSearch(writer, segments, low, middle - 1);
  }
  if (middle < high) {
    writer.Bind(above);
    EmitSearch(writer, segments, middle, high);
  }
}

int NumberOf(const char* name) {
  const int number = seccomp_syscall_resolve_name(name);
  if (number < 0) throw std::runtime_error(std::string("seccomp: no system call ") + name);
  return number;
}

int CompatNumberOf(const char* name) {
  const int number = seccomp_syscall_resolve_name_arch(kCompatScmpArchitecture, name);
  if (number < 0) throw std::runtime_error(std::string("seccomp: no compat system call ") + name);
  return number;
}

// setrlimit(resource, new) and prlimit64(pid, resource, new, old): see kFixedResourceLimit. The
// arguments sit where they do in every ABI; a compat ABI's pointers arrive zero-extended.
void WriteFixedResourceLimitRules(ProgramWriter& writer, ProgramWriter::Label setrlimit_rule,
                                  ProgramWriter::Label prlimit_rule, ProgramWriter::Label allow,
                                  ProgramWriter::Label deny, ProgramWriter::Label skipped_as_done) {
  writer.Bind(setrlimit_rule);
  writer.LoadWord(ArgumentLowWord(0));
  writer.JumpIf(BPF_JEQ, kFixedResourceLimit, skipped_as_done, allow);
  writer.Bind(prlimit_rule);
  const ProgramWriter::Label prlimit_sets = writer.NewLabel();
  writer.LoadWord(ArgumentLowWord(1));
  writer.JumpIf(BPF_JEQ, kFixedResourceLimit, ProgramWriter::kNext, allow);
  writer.LoadWord(ArgumentLowWord(2));  // a pointer: NULL only when both halves are 0
  writer.JumpIf(BPF_JEQ, 0, ProgramWriter::kNext, prlimit_sets);
  writer.LoadWord(ArgumentHighWord(2));
  writer.JumpIf(BPF_JEQ, 0, allow, prlimit_sets);
  writer.Bind(prlimit_sets);
  writer.LoadWord(ArgumentLowWord(3));
  writer.JumpIf(BPF_JEQ, 0, ProgramWriter::kNext, deny);
  writer.LoadWord(ArgumentHighWord(3));
  writer.JumpIf(BPF_JEQ, 0, skipped_as_done, deny);
}

}  // namespace

// The guard's instructions, ending where a call it leaves alone goes on (the next instruction).
std::vector<sock_filter> ResourceLimitGuardPrefix() {
  ProgramWriter writer;
  const ProgramWriter::Label pass = writer.NewLabel();
  const ProgramWriter::Label compat = writer.NewLabel();
  const ProgramWriter::Label setrlimit_rule = writer.NewLabel();
  const ProgramWriter::Label prlimit_rule = writer.NewLabel();
  const ProgramWriter::Label deny = writer.NewLabel();
  const ProgramWriter::Label skipped_as_done = writer.NewLabel();
  writer.LoadWord(offsetof(seccomp_data, arch));
  writer.JumpIf(BPF_JEQ, kNativeArchitecture, ProgramWriter::kNext, compat);
  writer.LoadWord(offsetof(seccomp_data, nr));
  // x32's setrlimit and prlimit64 are x86_64's numbers with bit 30 set.
  if (kX32SyscallBit != 0) writer.AndWith(~kX32SyscallBit);
  writer.JumpIf(BPF_JEQ, NumberOf("setrlimit"), setrlimit_rule, ProgramWriter::kNext);
  writer.JumpIf(BPF_JEQ, NumberOf("prlimit64"), prlimit_rule, pass);
  writer.Bind(compat);
  writer.JumpIf(BPF_JEQ, kCompatArchitecture, ProgramWriter::kNext, pass);
  writer.LoadWord(offsetof(seccomp_data, nr));
  writer.JumpIf(BPF_JEQ, CompatNumberOf("setrlimit"), setrlimit_rule, ProgramWriter::kNext);
  writer.JumpIf(BPF_JEQ, CompatNumberOf("prlimit64"), prlimit_rule, pass);
  WriteFixedResourceLimitRules(writer, setrlimit_rule, prlimit_rule, pass, deny, skipped_as_done);
  writer.Bind(deny);
  writer.Return(kDeny);
  writer.Bind(skipped_as_done);
  writer.Return(kSkippedAsDone);
  writer.Bind(pass);
  return writer.Finish();
}

const DefaultSeccompRules& DefaultSeccompPolicyRules() {
  static const DefaultSeccompRules rules{kAllowedSyscalls,      kNotImplementedSyscalls, kRefusedIoctlRequests,
                                         kAllowedSocketFamilies, kAllowedPersonalities,  kNamespaceFlags,
                                         kRefusedFlagsRules,     kFixedResourceLimit,     kDroppedFileAdvice,
                                         kRefusedSocketFilterOptions, kInvalidArgumentSyscalls, kRefusedPrctlOption,
                                         kInternetFamilies,      kSocketTypeMask,        kSocketTypeLimit,
                                         kStreamProtocols,       kDatagramProtocols,     kRefusedFcntlCommand};
  return rules;
}

// The program, written out rather than exported from libseccomp, whose one comparison per system
// call (~360 instructions) the kernel walks for every system call number at each attach (to fill
// its cache of always-allowed calls) and compiles each time. Here the numbers are segments found
// by a binary search, and the few calls whose arguments matter have a short rule of their own.
// libseccomp still names the numbers for this architecture.
SeccompProgram BuildDefaultSeccompProgram() {
  ProgramWriter writer;
  const ProgramWriter::Label allow = writer.NewLabel();
  const ProgramWriter::Label deny = writer.NewLabel();
  const ProgramWriter::Label kill = writer.NewLabel();
  const ProgramWriter::Label not_implemented = writer.NewLabel();
  const ProgramWriter::Label family_not_supported = writer.NewLabel();
  const ProgramWriter::Label ioctl_rule = writer.NewLabel();
  const ProgramWriter::Label socket_rule = writer.NewLabel();
  const ProgramWriter::Label internet_socket_rule = writer.NewLabel();
  const ProgramWriter::Label datagram_rule = writer.NewLabel();
  const ProgramWriter::Label icmpv6_rule = writer.NewLabel();
  const ProgramWriter::Label socket_type_not_supported = writer.NewLabel();
  const ProgramWriter::Label protocol_not_supported = writer.NewLabel();
  const ProgramWriter::Label clone_rule = writer.NewLabel();
  const ProgramWriter::Label personality_rule = writer.NewLabel();
  const ProgramWriter::Label setrlimit_rule = writer.NewLabel();
  const ProgramWriter::Label prlimit_rule = writer.NewLabel();
  const ProgramWriter::Label skipped_as_done = writer.NewLabel();
  const ProgramWriter::Label not_supported = writer.NewLabel();
  const ProgramWriter::Label fadvise_rule = writer.NewLabel();
  const ProgramWriter::Label invalid_argument = writer.NewLabel();
  const ProgramWriter::Label prctl_rule = writer.NewLabel();
  const ProgramWriter::Label setsockopt_rule = writer.NewLabel();
  const ProgramWriter::Label fcntl_rule = writer.NewLabel();
  for (const RefusedFlagsRule& rule : kRefusedFlagsRules) {
    if (rule.error != EPERM && rule.error != EOPNOTSUPP) throw std::runtime_error("seccomp: a flags rule's errno has no return");
  }

  std::map<uint32_t, ProgramWriter::Label> rules;
  for (const char* name : kAllowedSyscalls) {
    const int number = seccomp_syscall_resolve_name(name);
    if (number < 0) continue;  // __NR_SCMP_ERROR, or a pseudo number: not on this architecture
    rules[static_cast<uint32_t>(number)] = allow;
  }
  rules[NumberOf("ioctl")] = ioctl_rule;
  rules[NumberOf("socket")] = socket_rule;
  rules[NumberOf("socketpair")] = socket_rule;
  rules[NumberOf("clone")] = clone_rule;
  for (const char* name : kNotImplementedSyscalls) {
    const int number = seccomp_syscall_resolve_name(name);
    if (number >= 0) rules[static_cast<uint32_t>(number)] = not_implemented;
  }
  rules[NumberOf("personality")] = personality_rule;
  rules[NumberOf("setrlimit")] = setrlimit_rule;
  rules[NumberOf("prlimit64")] = prlimit_rule;
  rules[NumberOf("fadvise64")] = fadvise_rule;
  for (const char* name : kInvalidArgumentSyscalls) rules[NumberOf(name)] = invalid_argument;
  rules[NumberOf("prctl")] = prctl_rule;
  rules[NumberOf("setsockopt")] = setsockopt_rule;
  for (const char* name : {"fcntl", "fcntl64"}) {
    const int number = seccomp_syscall_resolve_name(name);
    if (number >= 0) rules[static_cast<uint32_t>(number)] = fcntl_rule;
  }
  std::vector<ProgramWriter::Label> flags_rules;
  for (const RefusedFlagsRule& rule : kRefusedFlagsRules) {
    flags_rules.push_back(writer.NewLabel());
    rules[NumberOf(rule.syscall)] = flags_rules.back();
  }

  // Another architecture's system calls (an i386 binary on x86_64, where socketcall(2) and
  // ipc(2) reach the socket and IPC calls) would be read with our numbers: the process is killed.
  writer.LoadWord(offsetof(seccomp_data, arch));
  writer.JumpIf(BPF_JEQ, kNativeArchitecture, ProgramWriter::kNext, kill);
  writer.LoadWord(offsetof(seccomp_data, nr));
  // The x32 ABI's numbers (bit 30 set, x86_64) are above every rule, in the last gap: refused.
  const std::vector<Segment> segments = SegmentsOf(rules, deny);
  EmitSearch(writer, segments, 0, segments.size() - 1);

  writer.Bind(ioctl_rule);
  writer.LoadWord(ArgumentLowWord(1));  // the request
  writer.JumpIfAny(kRefusedIoctlRequests, deny, allow);

  // socket(family, type, protocol), socketpair(family, type, protocol, sv): see
  // kAllowedSocketFamilies and kInternetFamilies.
  writer.Bind(socket_rule);
  writer.LoadWord(ArgumentLowWord(0));  // the family
  writer.JumpIf(BPF_JEQ, AF_UNIX, allow, ProgramWriter::kNext);
  writer.JumpIfAny(kInternetFamilies, internet_socket_rule, family_not_supported);
  writer.Bind(internet_socket_rule);
  writer.LoadWord(ArgumentLowWord(1));  // the type
  writer.AndWith(kSocketTypeMask);
  writer.JumpIf(BPF_JGE, kSocketTypeLimit, allow, ProgramWriter::kNext);
  writer.JumpIf(BPF_JEQ, SOCK_RAW, allow, ProgramWriter::kNext);
  writer.JumpIf(BPF_JEQ, SOCK_STREAM, ProgramWriter::kNext, datagram_rule);
  writer.LoadWord(ArgumentLowWord(2));  // the protocol of a stream
  writer.JumpIfAny(kStreamProtocols, allow, protocol_not_supported);
  writer.Bind(datagram_rule);
  writer.JumpIf(BPF_JEQ, SOCK_DGRAM, ProgramWriter::kNext, socket_type_not_supported);
  writer.LoadWord(ArgumentLowWord(2));  // the protocol of a datagram socket
  writer.JumpIfAny(kDatagramProtocols, allow, ProgramWriter::kNext);
  writer.JumpIf(BPF_JEQ, IPPROTO_ICMP, ProgramWriter::kNext, icmpv6_rule);
  writer.LoadWord(ArgumentLowWord(0));
  writer.JumpIf(BPF_JEQ, AF_INET, allow, protocol_not_supported);
  writer.Bind(icmpv6_rule);
  writer.JumpIf(BPF_JEQ, IPPROTO_ICMPV6, ProgramWriter::kNext, protocol_not_supported);
  writer.LoadWord(ArgumentLowWord(0));
  writer.JumpIf(BPF_JEQ, AF_INET6, allow, protocol_not_supported);

  // clone: threads and processes, never new namespaces (the flags are its first argument).
  writer.Bind(clone_rule);
  writer.LoadWord(ArgumentLowWord(0));
  writer.JumpIf(BPF_JSET, kNamespaceFlags, deny, allow);

  writer.Bind(personality_rule);
  writer.LoadWord(ArgumentLowWord(0));
  writer.JumpIfAny(kAllowedPersonalities, allow, deny);

  WriteFixedResourceLimitRules(writer, setrlimit_rule, prlimit_rule, allow, deny, skipped_as_done);

  // fadvise64(fd, offset, len, advice): see kDroppedFileAdvice.
  writer.Bind(fadvise_rule);
  writer.LoadWord(ArgumentLowWord(3));
  writer.JumpIf(BPF_JEQ, kDroppedFileAdvice, skipped_as_done, allow);

  // prctl(option, ...): see kRefusedPrctlOption.
  writer.Bind(prctl_rule);
  writer.LoadWord(ArgumentLowWord(0));
  writer.JumpIf(BPF_JEQ, kRefusedPrctlOption, invalid_argument, allow);

  // setsockopt(fd, level, name, ...): see kRefusedSocketFilterOptions. The level first: their
  // numbers mean other options at other levels (26 is IPV6_V6ONLY).
  writer.Bind(setsockopt_rule);
  writer.LoadWord(ArgumentLowWord(1));
  writer.JumpIf(BPF_JEQ, SOL_SOCKET, ProgramWriter::kNext, allow);
  writer.LoadWord(ArgumentLowWord(2));
  writer.JumpIfAny(kRefusedSocketFilterOptions, deny, allow);

  // fcntl(fd, cmd, ...): see kRefusedFcntlCommand.
  writer.Bind(fcntl_rule);
  writer.LoadWord(ArgumentLowWord(1));
  writer.JumpIf(BPF_JEQ, kRefusedFcntlCommand, invalid_argument, allow);

  for (size_t index = 0; index < flags_rules.size(); ++index) {
    writer.Bind(flags_rules[index]);
    writer.LoadWord(ArgumentLowWord(kRefusedFlagsRules[index].argument));
    const ProgramWriter::Label refused = kRefusedFlagsRules[index].error == EPERM ? deny : not_supported;
    writer.JumpIf(BPF_JSET, kRefusedFlagsRules[index].refused_flags, refused, allow);
  }

  writer.Bind(deny);
  writer.Return(kDeny);
  writer.Bind(allow);
  writer.Return(kAllow);
  writer.Bind(kill);
  writer.Return(SECCOMP_RET_KILL_PROCESS);
  writer.Bind(not_implemented);
  writer.Return(kNotImplemented);
  writer.Bind(family_not_supported);
  writer.Return(kFamilyNotSupported);
  writer.Bind(socket_type_not_supported);
  writer.Return(kSocketTypeNotSupported);
  writer.Bind(protocol_not_supported);
  writer.Return(kProtocolNotSupported);
  writer.Bind(skipped_as_done);
  writer.Return(kSkippedAsDone);
  writer.Bind(not_supported);
  writer.Return(SECCOMP_RET_ERRNO | EOPNOTSUPP);
  writer.Bind(invalid_argument);
  writer.Return(kInvalidArgument);

  SeccompProgram result;
  result.instructions = writer.Finish();
  if (result.instructions.size() > BPF_MAXINSNS) throw std::runtime_error("seccomp: the program is too long");
  result.Finish();
  return result;
}

SeccompProgram BuildResourceLimitGuardProgram() {
  SeccompProgram result;
  result.instructions = ResourceLimitGuardPrefix();
  result.instructions.push_back(BPF_STMT(BPF_RET | BPF_K, kAllow));
  result.Finish();
  return result;
}

}  // namespace parafork
