#ifndef HEARD_CLIBPQ_SHIM_H
#define HEARD_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
