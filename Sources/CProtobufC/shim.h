// Shim for libprotobuf-c: the runtime used by the generated code in CONNXProto.
#ifndef CPROTOBUFC_SHIM_H
#define CPROTOBUFC_SHIM_H
#include <protobuf-c/protobuf-c.h>
#endif
