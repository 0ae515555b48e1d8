// CRC-32C with the processor's CRC32 instruction, for PithCoding's `CRC32C` (its only importer).
#ifndef CCRC32C_H
#define CCRC32C_H
#include <stddef.h>
#include <stdint.h>

// 1 when this processor has the instruction (x86-64 SSE4.2, AArch64 CRC32), else 0.
int ccrc32c_hardware(void);

// The raw register update over `length` bytes: no inversion before or after (the caller applies
// CRC-32C's initial and final XOR). Call only when ccrc32c_hardware() returned 1.
uint32_t ccrc32c_update(uint32_t crc, const uint8_t *data, size_t length);
#endif
