/* ctx_aarch64.S - the context switch for AArch64 (AAPCS64, Linux): the backend hooks of ctx.h.
 *
 * A switch is an ordinary function call that returns on another stack. AAPCS64 lets a callee
 * clobber everything except x19-x28, the frame pointer x29, sp, and the low 64 bits of v8-v15
 * (d8-d15); we also save the link register x30, which is where the switch returns to, and FPCR
 * (rounding mode, flush-to-zero), so that fesetround() stays per goroutine as on x86-64. No
 * signal mask, so no system call: that is what makes this far cheaper than swapcontext.
 *
 * The frame ctx__jump leaves on a suspended stack (ctx->sp points at +0x00, 16-byte aligned):
 *
 *        high addresses
 *        +--------------------+
 *   0xa8 | (pad)              |
 *   0xa0 | FPCR               |
 *   0x98 | x30 (lr)           |  into ctx_switch; ctx__boot in a fresh context
 *   0x90 | x29 (fp)           |  0 in a fresh context: ends frame-pointer walks
 *   0x88 | x28                |
 *    ..  | ..                 |
 *   0x48 | x20                |  fresh context: arg
 *   0x40 | x19                |  fresh context: fn
 *   0x38 | d15                |
 *    ..  | ..                 |
 *   0x00 | d8                 |  <- ctx->sp
 *        +--------------------+
 *        low addresses          176 bytes in all
 *
 * Writing FPCR can stall the pipeline on some cores, so it is written only when it differs; it
 * rarely does. Not supported: pointer authentication of the saved lr (we never sign it) and BTI
 * landing pads (ctx__boot is reached by ret, which BTI does not check).
 */

    .text

/* struct ctx *ctx__jump(struct ctx *from, struct ctx *to)
 * x0 = from, x1 = to. Returns, in to, the from of the switch that resumed it (x0 untouched). */
    .globl  ctx__jump
    .type   ctx__jump, %function
    .p2align 4
ctx__jump:
    sub     sp, sp, #176
    stp     d8,  d9,  [sp, #0x00]
    stp     d10, d11, [sp, #0x10]
    stp     d12, d13, [sp, #0x20]
    stp     d14, d15, [sp, #0x30]
    stp     x19, x20, [sp, #0x40]
    stp     x21, x22, [sp, #0x50]
    stp     x23, x24, [sp, #0x60]
    stp     x25, x26, [sp, #0x70]
    stp     x27, x28, [sp, #0x80]
    stp     x29, x30, [sp, #0x90]
    mrs     x9, fpcr
    str     x9, [sp, #0xa0]

    mov     x9, sp
    str     x9, [x0]                /* from->sp = sp: from is suspended */
    ldr     x9, [x1]
    mov     sp, x9                  /* sp = to->sp: we are on to's stack now */
    str     xzr, [x1]               /* to->sp = NULL: to is running */

    ldp     d8,  d9,  [sp, #0x00]
    ldp     d10, d11, [sp, #0x10]
    ldp     d12, d13, [sp, #0x20]
    ldp     d14, d15, [sp, #0x30]
    ldp     x19, x20, [sp, #0x40]
    ldp     x21, x22, [sp, #0x50]
    ldp     x23, x24, [sp, #0x60]
    ldp     x25, x26, [sp, #0x70]
    ldp     x27, x28, [sp, #0x80]
    ldp     x29, x30, [sp, #0x90]
    ldr     x9, [sp, #0xa0]
    mrs     x10, fpcr
    cmp     x9, x10
    b.eq    1f
    msr     fpcr, x9
1:  add     sp, sp, #176
    ret                             /* to x30; x0 is still our from */
    .size   ctx__jump, .-ctx__jump

/* void *ctx__prepare(void *stack_lo, void *top, void (*fn)(void *), void *arg)
 * x0 = stack_lo (unused here), x1 = top, x2 = fn, x3 = arg. Returns the fresh context's sp: the
 * frame above, as if ctx__jump had suspended a call made from ctx__boot. */
    .globl  ctx__prepare
    .type   ctx__prepare, %function
    .p2align 4
ctx__prepare:
    and     x1, x1, #~15            /* top, 16-aligned down */
    sub     x0, x1, #176            /* the frame: sp is 16-aligned */
    stp     xzr, xzr, [x0, #0x00]   /* d8-d15 = 0 */
    stp     xzr, xzr, [x0, #0x10]
    stp     xzr, xzr, [x0, #0x20]
    stp     xzr, xzr, [x0, #0x30]
    stp     x2,  x3,  [x0, #0x40]   /* x19 = fn, x20 = arg */
    stp     xzr, xzr, [x0, #0x50]   /* x21-x28 = 0 */
    stp     xzr, xzr, [x0, #0x60]
    stp     xzr, xzr, [x0, #0x70]
    stp     xzr, xzr, [x0, #0x80]
    adr     x9, ctx__boot
    stp     xzr, x9,  [x0, #0x90]   /* x29 = 0, x30 = ctx__boot */
    mrs     x9, fpcr                /* a fresh context inherits its creator's FP modes */
    stp     x9,  xzr, [x0, #0xa0]
    ret
    .size   ctx__prepare, .-ctx__prepare

/* The entry trampoline. ctx__jump's ret arrives here with sp = top (16-aligned, as AAPCS64 wants
 * at every instruction) and x0 = the context we came from. The CFI marks the end of the stack
 * for debuggers and unwinders. */
    .type   ctx__boot, %function
    .p2align 4
ctx__boot:
    .cfi_startproc
    .cfi_undefined x30
    mov     x1, x19                 /* fn; x0 is prev already */
    mov     x2, x20                 /* arg */
    bl      ctx__start
    brk     #0                      /* ctx__start never returns */
    .cfi_endproc
    .size   ctx__boot, .-ctx__boot

    .section .note.GNU-stack, "", %progbits
