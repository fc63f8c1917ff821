/* cpu.h - the /cpu workload: deterministic CPU work with safe points.
 *
 * One iteration is 64 dependent rounds of a 64-bit xorshift-multiply mix. Each round depends on
 * the previous one, so the loop can be neither vectorised nor parallelised and its cost is
 * linear in the iteration count. No memory traffic, no system calls, no sleeping: pure CPU.
 * Measured cost per iteration is in the README's results section (about 0.1 us on a 2020s
 * x86-64 core).
 *
 * The digest is defined so that any language can check it (the conformance suite re-computes
 * it in Python):
 *
 *     x = 0x243F6A8885A308D3
 *     for i in 0 .. N-1:
 *         x = x + i                                  (mod 2^64)
 *         repeat 64 times: x = (x ^ (x >> 27)) * 0x94D049BB133111EB   (mod 2^64)
 *     digest = x as 16 lowercase hex digits
 *
 * Every CPU_SAFEPOINT_EVERY iterations the loop calls hook_safepoint(), where a GIL may be
 * dropped or a goroutine preempted: every 5.7 us of work on the results machine (64 iterations
 * of 88.9 ns, the README's figure), about a thousand times shorter than CPython's 5 ms switch
 * interval and Go's 10 ms preemption, so neither waits measurably for a safe point.
 */
#ifndef TRIAD_CPU_H
#define TRIAD_CPU_H

#include <stdint.h>

#define CPU_ITERATIONS_MAX  10000000u /* about one second of one core */
#define CPU_SAFEPOINT_EVERY 64u
#define CPU_DIGEST_LEN      16

/* Runs `iterations` iterations and writes the digest as a NUL-terminated hex string. */
void cpu_digest(uint64_t iterations, char out[CPU_DIGEST_LEN + 1]);

#endif
