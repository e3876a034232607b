// One system call by its number, straight to the kernel: no libc, no errno (the result is the
// kernel's, -errno on failure). Shared by the code that runs between clone and exec (child.cc),
// where libc's wrappers are not safe to call, and by parafork-init, which has no libc at all.
// Plain C so that both a C++ and a freestanding C translation unit can include it.
// The register conventions are the kernel's: syscall(2), "Architecture calling conventions".
#ifndef PARAFORK_RAW_SYSCALL_H_
#define PARAFORK_RAW_SYSCALL_H_

static inline __attribute__((always_inline)) long parafork_raw_syscall(long number, long a1, long a2, long a3, long a4,
                                                                       long a5) {
#if defined(__x86_64__)
  long result;
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  __asm__ volatile("syscall"
                   : "=a"(result)
                   : "a"(number), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8)
                   : "rcx", "r11", "memory");
  return result;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = number;
  register long x0 __asm__("x0") = a1;
  register long x1 __asm__("x1") = a2;
  register long x2 __asm__("x2") = a3;
  register long x3 __asm__("x3") = a4;
  register long x4 __asm__("x4") = a5;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
  return x0;
#else
#error "parafork's raw system calls support x86_64 and aarch64"
#endif
}

#endif  // PARAFORK_RAW_SYSCALL_H_
