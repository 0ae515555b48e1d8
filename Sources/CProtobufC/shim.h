// Shim for libprotobuf-c: the runtime used by the generated code in CONNXProto.
#ifndef CPROTOBUFC_SHIM_H
#define CPROTOBUFC_SHIM_H
#include <protobuf-c/protobuf-c.h>
#include <errno.h>
#include <string.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

// A ProtobufCBuffer that writes what protobuf-c packs to a file descriptor: small pieces are
// gathered in `pending`, large ones (tensor data) go straight from their own memory to write(2),
// so packing a model never holds a second copy of it. The first failing write stops all further
// writing and keeps its errno in `error`; `written` counts the bytes that reached the file (and
// the holes below).
#define CPROTOBUFC_PENDING_BYTES (1 << 20)

//
// Holes: data pointers in [hole_base, hole_base + hole_count) are not data but slot numbers
// (pointer − hole_base) of bytes to be written later, in place. For such an append the buffer
// records where the bytes go (hole_offsets[slot] = file offset) and seeks past them instead of
// writing; `hole_base` is address space reserved without access, so nothing ever reads it.
typedef struct {
    ProtobufCBuffer base;
    int descriptor;
    int error;
    size_t written;
    size_t used;
    const uint8_t *hole_base;
    size_t hole_count;
    size_t *hole_offsets;
    uint8_t pending[CPROTOBUFC_PENDING_BYTES];
} cprotobufc_fd_buffer;

static inline void cprotobufc_fd_write_all(cprotobufc_fd_buffer *b, const uint8_t *data, size_t len) {
    while (len > 0 && b->error == 0) {
        ssize_t n = write(b->descriptor, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { b->error = n < 0 ? errno : EIO; return; }
        data += n;
        len -= (size_t)n;
        b->written += (size_t)n;
    }
}

static inline void cprotobufc_fd_flush(cprotobufc_fd_buffer *b) {
    cprotobufc_fd_write_all(b, b->pending, b->used);
    b->used = 0;
}

static inline void cprotobufc_fd_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data) {
    cprotobufc_fd_buffer *b = (cprotobufc_fd_buffer *)buffer;
    if (b->hole_count > 0 && (uintptr_t)data >= (uintptr_t)b->hole_base && (uintptr_t)data - (uintptr_t)b->hole_base < b->hole_count) {
        cprotobufc_fd_flush(b);
        if (b->error != 0) return;
        b->hole_offsets[(uintptr_t)data - (uintptr_t)b->hole_base] = b->written;
        if (len > 0 && lseek(b->descriptor, (off_t)len, SEEK_CUR) < 0) { b->error = errno; return; }
        b->written += len;
        return;
    }
    if (b->used + len <= CPROTOBUFC_PENDING_BYTES) {
        memcpy(b->pending + b->used, data, len);
        b->used += len;
        return;
    }
    cprotobufc_fd_flush(b);
    if (len < CPROTOBUFC_PENDING_BYTES / 2) {
        memcpy(b->pending, data, len);
        b->used = len;
    } else {
        cprotobufc_fd_write_all(b, data, len);
    }
}

static inline void cprotobufc_fd_buffer_init(cprotobufc_fd_buffer *b, int descriptor) {
    b->base.append = cprotobufc_fd_append;
    b->descriptor = descriptor;
    b->error = 0;
    b->written = 0;
    b->used = 0;
    b->hole_base = NULL;
    b->hole_count = 0;
    b->hole_offsets = NULL;
}
#endif
