/* cpu.c - the /cpu digest (see cpu.h for the definition). */
#include "cpu.h"

#include "hook.h"

#include <stdio.h>

#define CPU_SEED   0x243F6A8885A308D3ull /* the first hex digits of pi */
#define CPU_MUL    0x94D049BB133111EBull /* an odd constant from the splitmix64 finaliser */
#define CPU_ROUNDS 64

static uint64_t cpu_iteration(uint64_t x, uint64_t i)
{
    x += i;
    for (int r = 0; r < CPU_ROUNDS; r++)
        x = (x ^ (x >> 27)) * CPU_MUL;
    return x;
}

void cpu_digest(uint64_t iterations, char out[CPU_DIGEST_LEN + 1])
{
    uint64_t x = CPU_SEED;
    for (uint64_t i = 0; i < iterations; i++) {
        x = cpu_iteration(x, i);
        if (i % CPU_SAFEPOINT_EVERY == CPU_SAFEPOINT_EVERY - 1)
            hook_safepoint();
    }
    snprintf(out, CPU_DIGEST_LEN + 1, "%016llx", (unsigned long long)x);
}
