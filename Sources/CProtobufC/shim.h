// libprotobuf-c, the runtime of the generated code in CONNXProto. Headers only: every call into it
// is made from PithONNX/Internals/ProtobufCalls.swift.
#ifndef CPROTOBUFC_SHIM_H
#define CPROTOBUFC_SHIM_H
#include <protobuf-c/protobuf-c.h>
#endif
