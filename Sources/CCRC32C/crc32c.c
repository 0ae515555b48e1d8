// CRC-32C with the processor's CRC32 instruction (x86-64 SSE4.2, AArch64 CRC), chosen at run
// time. Swift cannot mark one function as using an instruction the whole module may not assume,
// so these few lines are C; the software fallback and everything else live in PithCoding.
#include "ccrc32c.h"

#if defined(__x86_64__)
#include <cpuid.h>

int ccrc32c_hardware(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    return (ecx & bit_SSE4_2) != 0;
}

__attribute__((target("sse4.2")))
uint32_t ccrc32c_update(uint32_t crc, const uint8_t *data, size_t length) {
    uint64_t c = crc;
    while (length > 0 && ((uintptr_t)data & 7) != 0) { c = __builtin_ia32_crc32qi((uint32_t)c, *data++); length--; }
    while (length >= 8) {
        uint64_t word;
        __builtin_memcpy(&word, data, 8);
        c = __builtin_ia32_crc32di(c, word);
        data += 8;
        length -= 8;
    }
    while (length > 0) { c = __builtin_ia32_crc32qi((uint32_t)c, *data++); length--; }
    return (uint32_t)c;
}

#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif

int ccrc32c_hardware(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }

__attribute__((target("crc")))
uint32_t ccrc32c_update(uint32_t crc, const uint8_t *data, size_t length) {
    while (length >= 8) {
        uint64_t word;
        __builtin_memcpy(&word, data, 8);
        crc = __builtin_arm_crc32cd(crc, word);
        data += 8;
        length -= 8;
    }
    while (length > 0) { crc = __builtin_arm_crc32cb(crc, *data++); length--; }
    return crc;
}

#else
int ccrc32c_hardware(void) { return 0; }
uint32_t ccrc32c_update(uint32_t crc, const uint8_t *data, size_t length) { (void)data; (void)length; return crc; }
#endif
