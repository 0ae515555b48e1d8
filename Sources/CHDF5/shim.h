// Shim for libhdf5: evaluates the macros Swift cannot import (type ids that are
// global variables behind macros, property-list defaults, access flags) in
// static inline functions prefixed `chdf5_`.
#ifndef CHDF5_SHIM_H
#define CHDF5_SHIM_H
#include <hdf5.h>

static inline hid_t chdf5_p_default(void) { return H5P_DEFAULT; }
static inline hid_t chdf5_s_all(void) { return H5S_ALL; }
static inline unsigned chdf5_f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline hid_t chdf5_t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t chdf5_t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t chdf5_t_c_s1(void) { return H5T_C_S1; }
static inline size_t chdf5_t_variable(void) { return H5T_VARIABLE; }
static inline hid_t chdf5_e_default(void) { return H5E_DEFAULT; }
#endif
