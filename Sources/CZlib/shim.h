// Shim for zlib: gzip (MNIST IDX files) and deflate (.npz archives) for the evaluator's inputs.
#ifndef CZLIB_SHIM_H
#define CZLIB_SHIM_H
#include <zlib.h>

// inflateInit2 is a macro; Swift sees this function instead.
static inline int czlib_inflate_init(z_stream *stream, int window_bits) {
    return inflateInit2(stream, window_bits);
}
#endif
