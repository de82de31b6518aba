// Atomic swap of two paths (Linux renameat2 with RENAME_EXCHANGE), through the raw system call so
// that it does not depend on the C library exposing renameat2 to Swift (it needs _GNU_SOURCE).
#include "kernels.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

int shears_rename_exchange(const char *a, const char *b) {
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
#else
    errno = ENOSYS;
    return -1;
#endif
}
