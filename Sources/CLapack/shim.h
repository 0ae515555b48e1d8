// Shim for OpenBLAS (CBLAS) and LAPACKE. `lapack_int` is a macro: Swift sees Int32.
#ifndef CLAPACK_SHIM_H
#define CLAPACK_SHIM_H
#include <cblas.h>
#include <lapacke.h>

static inline int clapack_row_major(void) { return LAPACK_ROW_MAJOR; }
#endif
