// What a task can leave behind in its network namespace after every process of it has gone, and the
// check the pool makes before a namespace is leased again (see network_namespace_pool.h).
//
// Found by running, as a task does (no capabilities, lo down, no address, no route), every socket
// family and option it may use in a fresh namespace and comparing all of /proc/net before and after
// its exit (issue 12). What outlives the task's processes:
//   - sockets: in flight in a unix socket cycle (freed only when the kernel's unix garbage collector
//     runs, and the bound abstract name with them), held by asynchronous I/O still being torn down,
//     closing (TCP orphans, TIME_WAIT), or simply not freed yet: a netlink socket is freed an RCU
//     grace period after its close (netlink_release: call_rcu). /proc/net/sockstat counts this
//     namespace's ("sockets: used", every protocol's "inuse", "tw").
//   - IPv6 flow labels, which linger up to 150 s after their socket (net/ipv6/ip6_flowlabel.c) and
//     carry a 20-bit label and an address: /proc/net/ip6_flowlabel.
// Everything else a task can make there belongs to a socket and goes with it: bound names and
// ports, netlink ports and groups, multicast memberships (ip_mc_drop_socket), socket options. What
// needs CAP_NET_ADMIN (routes, addresses, devices, neighbours, netfilter, xfrm) no task can make.
// Net sysctls are writable by host uid 0 even without capabilities (procfs grants root the owner's
// permission bits: test_perm in fs/proc/proc_sysctl.c; none of the 578 is group- or
// world-writable): such a task's namespace is never reused, so nothing here reads them.
//
// Not checked: the namespace's counters (/proc/net/snmp, snmp6, netstat, dev). A task moves them
// with failed sends and connects, and a later task leasing the same namespace reads the sums: a
// number, no content, like the kernel-wide counters every task already reads (/proc/stat, socket
// inode numbers). Comparing them costs ~150 us of CPU per task (text of ~400 counters), which the
// pool's one thread cannot keep up with at 1,500 spawns/s on 2 CPUs.
#pragma once

#include <string_view>

#include "unique_fd.h"

namespace parafork {

// True when /proc/net/sockstat (its text) counts no socket of this namespace: "used", every
// "inuse" and "tw" are 0. Its other numbers (TCP orphans, alloc, memory) are kernel-wide.
bool SockstatCountsNoSocket(std::string_view sockstat);

// True when /proc/net/ip6_flowlabel (its text) lists no label: only its header line.
bool FlowLabelsListNone(std::string_view ip6_flowlabel);

enum class Leftovers {
  kNone,
  kSockets,     // sockets still allocated: they may yet be freed (see above); look again later
  kLingering,   // IPv6 flow labels, or files that could not be read: drop the namespace
};

// The two files the check reads, opened once from inside their namespace and kept with it: a
// /proc/net file is bound at its open to the namespace of the thread that opened it, and a pread
// at offset 0 makes a seq file's text anew (seq_read_iter). So the check reads them from anywhere,
// without entering the namespace: ~3.5 us against ~23 us for setns in and out with an open and a
// close of each (after each setns procfs builds the namespace's /proc/net entries anew, as
// proc_net_d_revalidate keeps none), measured on this project's 2-vCPU VM (Linux 6.18).
// What keeping them costs: two fds and, estimated, ~9 KiB of kernel memory a namespace (each
// file's seq buffer, a page, is kept from its first read), against its ~200 KiB
// (network_namespace_pool.h).
struct NetworkNamespaceFiles {
  UniqueFd flow_labels;  // invalid once opened: the kernel has no IPv6, and no flow label
  UniqueFd sockstat;
  bool opened = false;

  // Opens both through `net_directory`, an fd of /proc/thread-self/net: the calling thread must
  // be in the namespace (the kernel looks /proc/net entries up in the thread's current one at each
  // open). 0 or an errno.
  int Open(int net_directory);
};

// Reads both kept files. Files not opened, or unreadable, are kLingering.
Leftovers FindNetworkNamespaceLeftovers(const NetworkNamespaceFiles& files);

}  // namespace parafork
