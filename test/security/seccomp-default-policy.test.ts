// The default seccomp filter (native/src/seccomp_policy.cc) against hostile tasks, argument by
// argument: the socket families it lets a task create, the terminal ioctls it refuses, the other
// ABIs, and every system call Docker's default profile refuses. Each probe is harmless by
// construction: its arguments make the call do nothing even where it is allowed (an invalid socket
// type, fd 0 being /dev/null, bad fds and null pointers), and nothing is ever bound or listened on.
// Needs root (the sandbox builds namespaces) and x86_64 (the probes name x86_64 system call numbers).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Launcher } from '../../src/index.js';
import { missingRequirement, runningAsRoot } from '../helpers/requirements.js';
import { python, runSandboxed, syscallProbe, type SandboxedRun } from './sandbox-helpers.js';

const skip =
  missingRequirement('the sandbox needs root (namespaces, mounts, pivot_root)', runningAsRoot) ??
  missingRequirement('the probes use x86_64 system call numbers', process.arch === 'x64');

const SIGSYS = 31;

/** The families a task may create sockets of: what ordinary programs use (see docs/security.md). */
const allowedFamilies = new Set([1, 2, 10]); // AF_UNIX, AF_INET, AF_INET6 (not AF_NETLINK: sandbox-netlink-memory.test.ts)

/**
 * Python printing, as JSON, what socket(family, 11, 0) and socketpair(family, 11, 0) answer for
 * families 0..255 and for each family with bit 32 set (the kernel reads the family as an int, so a
 * filter must compare only the low 32 bits). Type 11 is SOCK_MAX: the kernel refuses it with
 * EINVAL right after the family's range check and before it creates anything or loads a
 * protocol's module, so a family the filter lets through answers EINVAL and one it refuses the
 * filter's errno.
 */
const socketFamilySweep = [
  'import ctypes, errno, json',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'def answer(result): return "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()]',
  'pair = (ctypes.c_int * 2)()',
  'found = {}',
  'for family in range(256):',
  '  found[f"socket {family}"] = answer(libc.syscall(41, ctypes.c_long(family), 11, 0))',
  '  found[f"socket {family} | 1 << 32"] = answer(libc.syscall(41, ctypes.c_long(family | 1 << 32), 11, 0))',
  '  found[f"socketpair {family}"] = answer(libc.syscall(53, ctypes.c_long(family), 11, 0, pair))',
  'print(json.dumps(found))',
].join('\n');

/** x86_64 machine code making one i386 system call through int 0x80: socketcall(SYS_SOCKET, args). */
const i386SocketcallProbe = [
  'import ctypes, struct',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'libc.mmap.restype = ctypes.c_void_p',
  '# MAP_32BIT: int 0x80 reads 32-bit registers, so the code and its arguments sit below 4 GiB.',
  'page = libc.mmap(None, 4096, 7, 0x22 | 0x40, -1, 0)',
  'arguments = page + 64',
  'ctypes.memmove(arguments, struct.pack("<III", 40, 11, 0), 12)  # AF_VSOCK, SOCK_MAX (invalid), 0',
  'code = bytes([0x53, 0xb8, 102, 0, 0, 0, 0xbb, 1, 0, 0, 0, 0xb9]) + struct.pack("<I", arguments) + bytes([0xcd, 0x80, 0x5b, 0xc3])',
  'ctypes.memmove(page, code, len(code))',
  'print("returned", ctypes.CFUNCTYPE(ctypes.c_int)(page)())',
].join('\n');

/**
 * Every system call Docker's default profile refuses (all of them, or unless the container holds
 * the capability it names, which a task never does), by group as in docs/security.md: x86_64
 * number and arguments that make the call do nothing where it is allowed (bad fds, null pointers,
 * invalid flags, zero lengths). Docker allows modify_ldt, name_to_handle_at, fanotify_mark,
 * adjtimex and clock_adjtime (reading), and personality(UNAME26 | PER_LINUX32); parafork does not.
 */
const refusedLikeDocker: Record<string, Record<string, readonly number[]>> = {
  "tracing and other processes' memory": {
    ptrace: [101, 2, 0, 0, 0], // PTRACE_PEEKDATA of pid 0
    process_vm_readv: [310, 0, 0, 0, 0, 0, 0],
    process_vm_writev: [311, 0, 0, 0, 0, 0, 0],
    kcmp: [312, 0, 0, 99, 0, 0],
    pidfd_getfd: [438, -1, 0, 0],
    process_madvise: [440, -1, 0, 0, 0, 0],
  },
  'the kernel keyring': { keyctl: [250, 0, 0, 0, 0, 0], add_key: [248, 0, 0, 0, 0, 0], request_key: [249, 0, 0, 0, 0] },
  'BPF and perf events': { bpf: [321, 0, 0, 0], perf_event_open: [298, 0, 0, -1, -1, 0] },
  'userfaultfd and io_uring': {
    userfaultfd: [323, 0xffff],
    io_uring_setup: [425, 0, 0],
    io_uring_enter: [426, -1, 0, 0, 0, 0, 0],
    io_uring_register: [427, -1, 0, 0, 0],
  },
  'file handles': { open_by_handle_at: [304, -1, 0, 0], name_to_handle_at: [303, -1, 0, 0, 0, 0] },
  'kernel modules and kexec': {
    init_module: [175, 0, 0, 0],
    finit_module: [313, -1, 0, 0],
    delete_module: [176, 0, 0],
    create_module: [174, 0, 0],
    get_kernel_syms: [177, 0],
    query_module: [178, 0, 0, 0, 0, 0],
    kexec_load: [246, 0, 0, 0, 0xffffffff],
    kexec_file_load: [320, -1, -1, 0, 0, 0xffff],
  },
  'mounts and the root': {
    mount: [165, 0, 0, 0, 0, 0],
    umount2: [166, 0, 0],
    pivot_root: [155, 0, 0],
    chroot: [161, 0],
    fsopen: [430, 0, 0],
    fsconfig: [431, -1, 0, 0, 0, 0],
    fsmount: [432, -1, 0, 0],
    fspick: [433, -1, 0, 0],
    open_tree: [428, -1, 0, 0],
    move_mount: [429, -1, 0, -1, 0, 0],
    mount_setattr: [442, -1, 0, 0, 0, 0],
  },
  namespaces: {
    unshare: [272, 0x10000000 | 0x2000], // CLONE_NEWUSER | CLONE_PTRACE: EINVAL where allowed
    setns: [308, -1, 0],
    'clone with CLONE_NEWUSER': [56, 0x10000000 | 0x200 | 17, 0, 0, 0, 0], // with CLONE_FS: EINVAL where allowed
  },
  'reboot, swap, accounting, quotas, the kernel log': {
    reboot: [169, 0, 0, 0, 0],
    swapon: [167, 0, 0],
    swapoff: [168, 0],
    acct: [163, 0],
    quotactl: [179, 0, 0, 0, 0],
    quotactl_fd: [443, -1, 0, 0, 0],
    syslog: [103, 10, 0, 0], // SYSLOG_ACTION_SIZE_BUFFER
    vhangup: [153],
  },
  'I/O ports and the LDT': { iopl: [172, 0], ioperm: [173, 0, 0, 0], modify_ldt: [154, 0, 0, 0] },
  clocks: { settimeofday: [164, 1, 0], clock_settime: [227, 0xffff, 0], clock_adjtime: [305, 0xffff, 0], adjtimex: [159, 0] },
  'host and domain names': { sethostname: [170, 0, 0], setdomainname: [171, 0, 0] },
  'fanotify and dcookies': { fanotify_init: [300, 0xffffffff, 0], fanotify_mark: [301, -1, 0, 0, 0, 0], lookup_dcookie: [212, 0, 0, 0] },
  'NUMA memory policy': {
    mbind: [237, 0, 0, 0, 0, 0, 0],
    set_mempolicy: [238, 0, 0, 0],
    get_mempolicy: [239, 0, 0, 0, 0, 0],
    set_mempolicy_home_node: [450, 0, 0, 0, 0],
    move_pages: [279, 0, 0, 0, 0, 0, 0],
    migrate_pages: [256, 0, 0, 0, 0],
  },
  'secret memory and LSM attributes': {
    memfd_secret: [447, 0xffffffff],
    lsm_get_self_attr: [459, 0, 0, 0, 0],
    lsm_set_self_attr: [460, 0, 0, 0, 0],
    lsm_list_modules: [461, 0, 0, 0],
  },
  'obsolete calls': { nfsservctl: [180, 0, 0, 0], uselib: [134, 0], ustat: [136, 0, 0], sysfs: [139, 3], _sysctl: [156, 0] },
  'personalities that weaken the task': {
    'personality(ADDR_NO_RANDOMIZE)': [135, 0x0040000],
    'personality(READ_IMPLIES_EXEC)': [135, 0x0400000],
    'personality(UNAME26 | PER_LINUX32)': [135, 0x20008],
  },
};

/** Python making each call of argv[1] ({name: [number, ...arguments]}) and printing {name: "ok" | errno name}. */
const callTable = [
  'import ctypes, errno, json, sys',
  'libc = ctypes.CDLL(None, use_errno=True)',
  'def answer(result): return "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()]',
  'calls = json.loads(sys.argv[1])',
  'print(json.dumps({name: answer(libc.syscall(*[ctypes.c_long(value) for value in call])) for name, call in calls.items()}))',
].join('\n');

describe.skipIf(skip !== undefined)(`the default seccomp filter${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let launcher: Launcher;

  beforeAll(() => {
    launcher = new Launcher();
  });

  afterAll(async () => {
    await launcher.close();
  });

  const run = (program: string, seccomp: 'default' | 'unconfined' = 'default', ...args: string[]): Promise<SandboxedRun> =>
    runSandboxed(launcher, python, ['-c', program, ...args], { seccomp });
  const probe = async (expression: string): Promise<string> => (await run(syscallProbe(expression))).stdout.trim();

  describe('socket families', () => {
    it('refuses an AF_VSOCK socket with EAFNOSUPPORT (the host shares the vsock port space)', async () => {
      expect(await probe('libc.socket(40, 1, 0)')).toBe('errno=EAFNOSUPPORT');
    });

    it('refuses AF_VSOCK given with high bits set, which the kernel drops', async () => {
      expect(await probe('libc.syscall(41, ctypes.c_long(40 | 1 << 32), 1, 0)')).toBe('errno=EAFNOSUPPORT');
    });

    it('refuses every family but AF_UNIX, AF_INET and AF_INET6, for socket and socketpair', async () => {
      const found = JSON.parse((await run(socketFamilySweep)).stdout) as Record<string, string>;
      const expected: Record<string, string> = {};
      for (let family = 0; family < 256; family++) {
        const answer = allowedFamilies.has(family) ? 'EINVAL' : 'EAFNOSUPPORT';
        expected[`socket ${family}`] = answer;
        expected[`socket ${family} | 1 << 32`] = answer;
        expected[`socketpair ${family}`] = answer;
      }
      expect(found).toEqual(expected);
    });

    // Red team, session 15: inside AF_INET and AF_INET6 the kernel reaches every protocol built in
    // (MPTCP and UDP-Lite here), and where it has modules it answers an unknown type or protocol
    // with request_module(), which runs modprobe as root outside the Task for each such call and
    // loads SCTP, DCCP, L2TP, ... where they exist. Only what ordinary programs use gets through:
    // TCP, UDP and ping (ICMP in AF_INET, ICMPv6 in AF_INET6, which the kernel refuses by
    // net.ipv4.ping_group_range in a Task's own network namespace), raw sockets left to
    // CAP_NET_RAW, and a type past SOCK_MAX to the kernel's EINVAL. Nothing is bound or connected.
    it('refuses socket types and protocols inside AF_INET and AF_INET6 beyond TCP, UDP and ping, with the kernel s own errnos', async () => {
      const [stream, datagram, raw, seqpacket, dccp] = [1, 2, 3, 5, 6];
      const flags = 0o2000000 | 0o4000; // SOCK_CLOEXEC | SOCK_NONBLOCK
      const calls: Record<string, number[]> = {
        'inet tcp': [41, 2, stream, 0],
        'inet tcp by number': [41, 2, stream, 6],
        'inet6 tcp with flags': [41, 10, stream | flags, 0],
        'inet udp': [41, 2, datagram, 0],
        'inet6 udp by number': [41, 10, datagram, 17],
        'inet ping': [41, 2, datagram, 1],
        'inet6 ping': [41, 10, datagram, 58],
        'inet raw': [41, 2, raw, 255],
        'inet type past SOCK_MAX': [41, 2, 11, 0],
        'inet mptcp': [41, 2, stream, 262],
        'inet6 mptcp': [41, 10, stream, 262],
        'inet mptcp, high bit set': [41, 2, stream, 2 ** 32 + 262],
        'inet udplite': [41, 2, datagram, 136],
        'inet sctp': [41, 2, stream, 132],
        'inet6 sctp seqpacket': [41, 10, seqpacket, 132],
        'inet dccp': [41, 2, dccp, 33],
        'inet dccp, protocol 0': [41, 2, dccp, 0],
        'inet icmpv6': [41, 2, datagram, 58],
        'inet6 icmp': [41, 10, datagram, 1],
        'inet udp as a stream': [41, 2, stream, 17],
        'socketpair inet mptcp': [53, 2, stream, 262, 0],
      };
      const found = JSON.parse((await run(callTable, 'default', JSON.stringify(calls))).stdout) as Record<string, string>;
      expect(found).toEqual({
        'inet tcp': 'ok',
        'inet tcp by number': 'ok',
        'inet6 tcp with flags': 'ok',
        'inet udp': 'ok',
        'inet6 udp by number': 'ok',
        'inet ping': 'EACCES',
        'inet6 ping': 'EACCES',
        'inet raw': 'EPERM',
        'inet type past SOCK_MAX': 'EINVAL',
        'inet mptcp': 'EPROTONOSUPPORT',
        'inet6 mptcp': 'EPROTONOSUPPORT',
        'inet mptcp, high bit set': 'EPROTONOSUPPORT',
        'inet udplite': 'EPROTONOSUPPORT',
        'inet sctp': 'EPROTONOSUPPORT',
        'inet6 sctp seqpacket': 'ESOCKTNOSUPPORT',
        'inet dccp': 'ESOCKTNOSUPPORT',
        'inet dccp, protocol 0': 'ESOCKTNOSUPPORT',
        'inet icmpv6': 'EPROTONOSUPPORT',
        'inet6 icmp': 'EPROTONOSUPPORT',
        'inet udp as a stream': 'EPROTONOSUPPORT',
        'socketpair inet mptcp': 'EPROTONOSUPPORT',
      });
    });

    it('lets ordinary programs use unix, IPv4 and IPv6 sockets and resolve names, also with AI_ADDRCONFIG (which asks netlink first)', async () => {
      const program = [
        'import socket',
        'a, b = socket.socketpair(); a.send(b"x"); print("unix", b.recv(1))',
        'print("inet", socket.socket(socket.AF_INET, socket.SOCK_DGRAM).family.value)',
        'print("inet6", socket.socket(socket.AF_INET6, socket.SOCK_STREAM).family.value)',
        'print("resolved", socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)[0][4][1])',
        'print("resolved with AI_ADDRCONFIG", socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG)[0][4][1])',
      ].join('\n');
      const result = await run(program);
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe("unix b'x'\ninet 2\ninet6 10\nresolved 80\nresolved with AI_ADDRCONFIG 80\n");
    });

    it('kills a task that makes an i386 system call (socketcall reaches every family there)', async () => {
      const unconfined = await run(i386SocketcallProbe, 'unconfined');
      expect(unconfined.stdout.trim()).toBe('returned -22'); // the kernel's EINVAL: int 0x80 reaches it
      const confined = await run(i386SocketcallProbe);
      expect(confined.stdout).toBe('');
      expect(confined.code).toBe(128 + SIGSYS); // parafork-init reports the signal as a shell would
    });

    it('refuses x32 system calls (numbers with bit 30 set) with EPERM', async () => {
      expect(await probe('libc.syscall(ctypes.c_long(0x40000000 | 41), 40, 11, 0)')).toBe('errno=EPERM');
    });
  });

  describe('terminal ioctls that inject input or take over a console', () => {
    // fd 0 is /dev/null: the kernel answers ENOTTY to any of these that the filter lets through.
    it.each([
      ['TIOCSTI (push a byte into the terminal input)', 'libc.ioctl(0, 0x5412, b"x")'],
      ['TIOCSTI with high bits set, which the kernel drops', 'libc.syscall(16, 0, ctypes.c_ulong(0x5412 | 1 << 32), b"x")'],
      ['TIOCLINUX (console selection paste and the like)', 'libc.ioctl(0, 0x541c, b"\\x03")'],
      ['TIOCCONS (redirect the console to this terminal)', 'libc.ioctl(0, 0x541d, 0)'],
      ['TIOCSETD (set a line discipline)', 'libc.ioctl(0, 0x5423, ctypes.byref(ctypes.c_int(0)))'],
      ['KDSKBENT (redefine a key of a virtual console)', 'libc.ioctl(0, 0x4b47, ctypes.create_string_buffer(4))'],
      ['KDSKBSENT (redefine what a function key types)', 'libc.ioctl(0, 0x4b49, ctypes.create_string_buffer(512))'],
    ])('refuses %s with EPERM', async (_name, expression) => {
      expect(await probe(expression)).toBe('errno=EPERM');
    });

    it('lets other ioctls through to the kernel', async () => {
      expect(await probe('libc.ioctl(0, 0x5401, ctypes.create_string_buffer(64))')).toBe('errno=ENOTTY'); // TCGETS on /dev/null
      expect(await probe('libc.ioctl(1, 0x541b, ctypes.byref(ctypes.c_int(0)))')).toBe('ok'); // FIONREAD on the stdout pipe
    });
  });

  describe("every system call Docker's default profile refuses", () => {
    let answers: Record<string, string>;

    beforeAll(async () => {
      const calls = Object.assign({}, ...Object.values(refusedLikeDocker)) as Record<string, readonly number[]>;
      answers = JSON.parse((await run(callTable, 'default', JSON.stringify(calls))).stdout) as Record<string, string>;
    });

    it.each(Object.keys(refusedLikeDocker))('refuses %s with EPERM', (group) => {
      const calls = Object.keys(refusedLikeDocker[group] ?? {});
      expect(Object.fromEntries(calls.map((name) => [name, answers[name]]))).toEqual(Object.fromEntries(calls.map((name) => [name, 'EPERM'])));
    });

    it('answers clone3 ENOSYS, so libc falls back to clone, and forking still works', async () => {
      expect(await probe('libc.syscall(435, 0, 0)')).toBe('errno=ENOSYS');
      const pipeline = await runSandboxed(launcher, '/bin/sh', ['-c', 'echo forked | cat | cat']);
      expect(pipeline.stdout).toBe('forked\n');
    });
  });

  // Red team: native AIO contexts count against fs.aio-max-nr (65536 by default), one counter for
  // the whole node that no cgroup, rlimit or namespace divides, and Docker's profile allows
  // io_setup. One Task taking 4096 events per call held it all in 16 calls, and every other
  // Task's and the node's own io_setup (databases, QEMU) failed with EAGAIN until it ended. The
  // filter now answers the native AIO calls ENOSYS, as a kernel built without AIO does, so
  // libraries fall back to threads (glibc's aio_read never used them). The probe asks for 4096
  // events once, and exits at once.
  describe('native AIO, a node-wide count no Task may hold', () => {
    it('answers io_setup ENOSYS and leaves fs.aio-nr as it was', async () => {
      const program = [
        'import ctypes, errno',
        'libc = ctypes.CDLL(None, use_errno=True)',
        'context = ctypes.c_ulong(0)',
        'before = int(open("/proc/sys/fs/aio-nr").read())',
        'result = libc.syscall(206, 4096, ctypes.byref(context))  # io_setup',
        'during = int(open("/proc/sys/fs/aio-nr").read())',
        'print("ok" if result == 0 else errno.errorcode[ctypes.get_errno()], during - before >= 4096)',
      ].join('\n');
      expect((await run(program)).stdout.trim()).toBe('ENOSYS False');
    });

    it('answers the rest of the native AIO calls ENOSYS too', async () => {
      // io_destroy, io_getevents, io_submit, io_cancel, io_pgetevents on context 0 (none).
      for (const number of [207, 208, 209, 210, 333]) expect(await probe(`libc.syscall(${number}, 0, 0, 0, 0, 0)`)).toBe('errno=ENOSYS');
    });
  });

  // Red team: huge pages come from the node's pool (vm.nr_hugepages), which no memory limit counts
  // (memory.max leaves hugetlb out) and which the kubelet keeps from Pods that ask for none (their
  // hugetlb limit is 0). A default Task mapped the whole pool with mmap(MAP_HUGETLB) or
  // memfd_create(MFD_HUGETLB) (checked once by hand with 2 pages reserved: HugePages_Free 0 while
  // it ran), starving the node's DPDK, databases and hugepage Pods. The filter now answers these
  // flags EPERM, what mmap(2) and memfd_create(2) document for a caller not allowed huge pages;
  // programs fall back to ordinary pages (transparent huge pages, charged to the Task, still work).
  // The probes ask for 2 MiB and exit; this machine may reserve none, so the kernel's own answer
  // would be ENOMEM (mmap) or a file (memfd_create).
  describe("the node's huge page pool", () => {
    const hugePageProbe = [
      'import ctypes, errno',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'libc.syscall.restype = ctypes.c_long',
      'def answer(result): return "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()]',
      'print("mmap", answer(libc.syscall(9, 0, 2 << 20, 3, 0x22 | 0x40000, -1, 0)))  # MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB',
      'print("memfd_create", answer(libc.syscall(319, b"huge", 0x4)))  # MFD_HUGETLB',
      'print("shmget", answer(libc.syscall(29, 0, 2 << 20, 0o1600 | 0x800)))  # IPC_PRIVATE, IPC_CREAT | SHM_HUGETLB',
      'print("plain mmap", answer(libc.syscall(9, 0, 2 << 20, 3, 0x22, -1, 0)))',
      'print("plain memfd_create", answer(libc.syscall(319, b"plain", 0)))',
    ].join('\n');

    it('refuses MAP_HUGETLB, MFD_HUGETLB and SHM_HUGETLB with EPERM, and leaves ordinary mappings alone', async () => {
      expect((await run(hugePageProbe)).stdout.trim().split('\n')).toEqual(['mmap EPERM', 'memfd_create EPERM', 'shmget EPERM', 'plain mmap ok', 'plain memfd_create ok']);
    });
  });

  describe('what the filter refuses, reached another way', () => {
    it('cannot open its init s memory through /proc/1/mem (ptrace, process_vm_writev): init is not dumpable', async () => {
      const program = ['try:', '  open("/proc/1/mem", "r+b", buffering=0); print("opened")', 'except OSError as e: print(e.strerror)'];
      expect((await run(program.join('\n'))).stdout.trim()).toBe('Permission denied');
    });
  });
});
