// Shim for OpenBLAS (CBLAS) and LAPACKE. `lapack_int` is a macro: Swift sees Int32.
#ifndef CLAPACK_SHIM_H
#define CLAPACK_SHIM_H
#include <cblas.h>
#include <lapacke.h>

static inline int clapack_row_major(void) { return LAPACK_ROW_MAJOR; }

// OpenBLAS starts its worker threads when the library loads, and they spin for a while waiting for
// work. This stops them; OpenBLAS starts them again on its next multi-threaded call.
void blas_thread_shutdown_(void);
#endif
