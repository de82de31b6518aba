#pragma once
#include <stddef.h>
#include <stdint.h>

/// 1 when the CPU converts half floats in hardware (x86-64 F16C + AVX), else 0.
int shears_has_f16c(void);
/// IEEE half → float for n elements (unaligned source allowed). Call only when shears_has_f16c().
void shears_f16_to_f32(const void *src, float *dst, size_t n);
/// float → IEEE half, round to nearest even, for n elements. Call only when shears_has_f16c().
void shears_f32_to_f16(const float *src, void *dst, size_t n);

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), continuing from `crc` (0 to start).
/// Uses the SSE4.2 instruction when the CPU has it, a table otherwise.
uint32_t shears_crc32c(uint32_t crc, const void *data, size_t n);

/// Registers a temporary file to unlink if SIGINT, SIGTERM or SIGHUP kills the process (installs
/// the handlers on first use). Returns a slot for shears_cleanup_unregister, or -1 when the table
/// is full or the path too long (the file is then only removed on normal unwinding).
int shears_cleanup_register(const char *path);
void shears_cleanup_unregister(int slot);

/// Unlinks every registered temporary file now (from a fatal-signal handler; async-signal-safe).
void shears_cleanup_unlink_all(void);

/// Registers a read-only mapping of an input file, so that a SIGBUS inside it (the file was
/// truncated while mapped) ends the process with a message naming the file, the temporary files
/// removed and exit status 2, instead of a silent crash. Installs the handler on first use. Returns
/// a slot for shears_mapping_unregister (call it before munmap), or -1 when the table is full (the
/// mapping is then unguarded).
int shears_mapping_register(const void *base, size_t length, const char *path);
void shears_mapping_unregister(int slot);

/// Exchanges the two paths atomically (both must exist; renameat2 RENAME_EXCHANGE). Returns 0, or -1
/// with errno set (ENOSYS or EINVAL where the kernel or file system cannot exchange).
int shears_rename_exchange(const char *a, const char *b);
