/*
 * long parafork_clone3(struct clone_args *args, size_t size, int (*entry)(void *), void *argument);
 *
 * clone3(2) has no glibc wrapper (glibc 2.36), and its child starts on the new stack with the
 * parent's registers: a child that returned from a C-level syscall() into the caller's frame would
 * run on a frame that is not on its stack. So, as glibc's own clone.S does, the child never returns
 * from here: it calls entry(argument) on its fresh stack and exits with the result. The parent
 * returns the syscall result (pid, or -errno) like a normal function.
 */
#if defined(__x86_64__)
        .text
        .globl  parafork_clone3
        .hidden parafork_clone3
        .type   parafork_clone3, @function
        .p2align 4
parafork_clone3:
        .cfi_startproc
#if defined(__CET__)
        endbr64
#endif
        mov     %rdx, %r8           /* entry: r8 survives syscall (only rcx, r11 and rax change) */
        mov     %rcx, %r9           /* argument */
        mov     $435, %eax          /* __NR_clone3 */
        syscall
        test    %rax, %rax
        jz      1f
        ret                         /* parent: pid or -errno */
1:
        .cfi_undefined rip          /* child: outermost frame, nothing to unwind into */
        xor     %ebp, %ebp
        mov     %r9, %rdi
        call    *%r8
        mov     %eax, %edi
        mov     $231, %eax          /* __NR_exit_group */
        syscall
        hlt
        .cfi_endproc
        .size   parafork_clone3, .-parafork_clone3
        .section .note.GNU-stack, "", @progbits

#elif defined(__aarch64__)
        .text
        .globl  parafork_clone3
        .hidden parafork_clone3
        .type   parafork_clone3, %function
        .p2align 2
parafork_clone3:
        .cfi_startproc
        mov     x10, x2             /* entry: x10/x11 survive svc (only x0 changes) */
        mov     x11, x3             /* argument */
        mov     x8, #435            /* __NR_clone3 */
        svc     #0
        cbz     x0, 1f
        ret                         /* parent: pid or -errno */
1:
        .cfi_undefined x30          /* child: outermost frame */
        mov     x29, xzr
        mov     x30, xzr
        mov     x0, x11
        blr     x10
        mov     x8, #94             /* __NR_exit_group */
        svc     #0
        brk     #0
        .cfi_endproc
        .size   parafork_clone3, .-parafork_clone3
        .section .note.GNU-stack, "", %progbits

#else
#error "parafork's clone3 entry supports x86_64 and aarch64"
#endif
