// Shim for libzstd: used by PithContainer to compress the container's metadata (manifest, source skeleton).
#ifndef CZSTD_SHIM_H
#define CZSTD_SHIM_H
#include <zstd.h>
static inline unsigned long long czstd_content_size_unknown(void) { return ZSTD_CONTENTSIZE_UNKNOWN; }
static inline unsigned long long czstd_content_size_error(void) { return ZSTD_CONTENTSIZE_ERROR; }
#endif
