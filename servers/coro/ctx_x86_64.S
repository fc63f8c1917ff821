/* ctx_x86_64.S - the context switch for x86-64 (System V ABI, Linux): the backend hooks of ctx.h.
 *
 * A switch is an ordinary function call that returns on another stack. The System V ABI lets a
 * callee clobber every register except rbx, rbp, r12-r15 and rsp, and the control bits of MXCSR
 * and the x87 control word (rounding, precision, exception masks): the caller of ctx_switch has
 * already spilled everything else, so those eight things are all we save. No signal mask, so no
 * system call: that is what makes this ~20x cheaper than swapcontext (ctx_ucontext.c).
 *
 * The frame ctx__jump leaves on a suspended stack (ctx->sp points at +0x00, 16-byte aligned):
 *
 *        high addresses
 *        +--------------------+
 *   0x38 | return address     |  into ctx_switch; ctx__boot in a fresh context
 *   0x30 | rbp                |  0 in a fresh context: ends frame-pointer walks
 *   0x28 | rbx                |  fresh context: fn
 *   0x20 | r12                |  fresh context: arg
 *   0x18 | r13                |
 *   0x10 | r14                |
 *   0x08 | r15                |
 *   0x04 | x87 CW | (pad)     |  16-bit control word, 2 bytes unused
 *   0x00 | MXCSR              |  32 bits   <- ctx->sp
 *        +--------------------+
 *        low addresses
 *
 * MXCSR is saved whole, so its sticky exception flags travel with the context too; the ABI lets
 * a callee change them anyway. Cost: a switch measured 12 ns on the dev machine (AMD EPYC,
 * workloads/micro/ctxswitch) with or without the four FP-mode instructions; what dominates is
 * the ret, which lands where the CPU's return-address predictor did not expect.
 *
 * Not supported: CET shadow stacks. A ret onto another stack is exactly what a shadow stack
 * forbids, so this file emits no .note.gnu.property and the linker marks the program as not
 * CET-compatible. Debian does not enable CET by default.
 */

    .text

/* struct ctx *ctx__jump(struct ctx *from, struct ctx *to)
 * rdi = from, rsi = to. Returns, in to, the from of the switch that resumed it. */
    .globl  ctx__jump
    .type   ctx__jump, @function
    .p2align 4
ctx__jump:
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp                /* rsp is 16-aligned again: 8 (call) + 48 + 8 */
    stmxcsr (%rsp)
    fnstcw  4(%rsp)

    movq    %rsp, (%rdi)            /* from->sp = rsp: from is suspended */
    movq    (%rsi), %rsp            /* rsp = to->sp: we are on to's stack now */
    movq    $0, (%rsi)              /* to->sp = NULL: to is running */

    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    movq    %rdi, %rax              /* to's ctx__jump returns our from */
    ret
    .size   ctx__jump, .-ctx__jump

/* void *ctx__prepare(void *stack_lo, void *top, void (*fn)(void *), void *arg)
 * rdi = stack_lo (unused here), rsi = top, rdx = fn, rcx = arg. Returns the fresh context's sp:
 * the frame above, as if ctx__jump had suspended a call made from ctx__boot. */
    .globl  ctx__prepare
    .type   ctx__prepare, @function
    .p2align 4
ctx__prepare:
    movq    %rsi, %rax
    andq    $-16, %rax              /* top, 16-aligned down */
    subq    $64, %rax               /* the frame: sp is 16-aligned */
    stmxcsr (%rax)                  /* a fresh context inherits its creator's FP modes */
    fnstcw  4(%rax)
    movw    $0, 6(%rax)
    movq    $0, 0x08(%rax)          /* r15 */
    movq    $0, 0x10(%rax)          /* r14 */
    movq    $0, 0x18(%rax)          /* r13 */
    movq    %rcx, 0x20(%rax)        /* r12 = arg */
    movq    %rdx, 0x28(%rax)        /* rbx = fn */
    movq    $0, 0x30(%rax)          /* rbp = 0 */
    leaq    ctx__boot(%rip), %rdx
    movq    %rdx, 0x38(%rax)        /* ctx__jump's ret lands in ctx__boot */
    ret
    .size   ctx__prepare, .-ctx__prepare

/* The entry trampoline. ctx__jump's ret arrives here with rsp = top (16-aligned) and rax = the
 * context we came from, so the call below enters ctx__start with the alignment the ABI promises
 * (rsp + 8 a multiple of 16). The CFI marks the end of the stack for debuggers and unwinders. */
    .type   ctx__boot, @function
    .p2align 4
ctx__boot:
    .cfi_startproc
    .cfi_undefined rip
    movq    %rax, %rdi              /* prev */
    movq    %rbx, %rsi              /* fn */
    movq    %r12, %rdx              /* arg */
    call    ctx__start@PLT
    ud2                             /* ctx__start never returns */
    .cfi_endproc
    .size   ctx__boot, .-ctx__boot

    .section .note.GNU-stack, "", @progbits
