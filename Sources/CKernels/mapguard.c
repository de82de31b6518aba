// Inputs are read through memory maps. When another process truncates a mapped file, touching a
// page past its new end raises SIGBUS, which by default kills the process with a core dump and no
// word on why. Mapped files are registered here (address range and path); the SIGBUS handler finds
// the file that holds the faulting address, writes one line naming it to stderr, removes the
// temporary output files of cleanup.c, and exits with status 2 (bad input). A SIGBUS at an address
// no registered file holds keeps the default action. The handler uses only async-signal-safe calls
// (write, unlink, _exit).
#include "kernels.h"
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define SHEARS_MAP_SLOTS 256
#define SHEARS_MAP_PATH 1024

static struct {
    _Atomic uintptr_t base;
    size_t length;
    char path[SHEARS_MAP_PATH];
} shears_maps[SHEARS_MAP_SLOTS];
static atomic_flag shears_maps_lock = ATOMIC_FLAG_INIT;
static atomic_int shears_maps_installed = 0;

static size_t put_text(char *buf, size_t at, size_t cap, const char *s) {
    while (*s && at < cap) buf[at++] = *s++;
    return at;
}

static size_t put_number(char *buf, size_t at, size_t cap, uint64_t v) {
    char digits[24];
    int n = 0;
    do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n && at < cap) buf[at++] = digits[--n];
    return at;
}

static void shears_bus_handler(int sig, siginfo_t *info, void *context) {
    (void)context;
    uintptr_t address = (uintptr_t)info->si_addr;
    int found = -1;
    for (int i = 0; i < SHEARS_MAP_SLOTS; i++) {
        uintptr_t base = atomic_load(&shears_maps[i].base);
        if (base && address >= base && address - base < shears_maps[i].length) { found = i; break; }
    }
    if (found < 0) {
        // Not a mapped input: the default action (the faulting access runs again and kills us).
        signal(sig, SIG_DFL);
        return;
    }
    char msg[SHEARS_MAP_PATH + 400];
    size_t n = 0, cap = sizeof msg - 1;
    n = put_text(msg, n, cap, "shears: error: ");
    n = put_text(msg, n, cap, shears_maps[found].path);
    n = put_text(msg, n, cap, ": the file was truncated while shears was reading it (bus error at byte ");
    n = put_number(msg, n, cap, (uint64_t)(address - atomic_load(&shears_maps[found].base)));
    n = put_text(msg, n, cap, " of the ");
    n = put_number(msg, n, cap, (uint64_t)shears_maps[found].length);
    n = put_text(msg, n, cap, " it had when opened); no output was written. Do not modify inputs while shears runs; run again on the complete file.\n");
    msg[n] = 0;
    ssize_t w = write(2, msg, n);
    (void)w;
    shears_cleanup_unlink_all();
    _exit(2);
}

static void shears_maps_install(void) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&shears_maps_installed, &expected, 1)) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = shears_bus_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

int shears_mapping_register(const void *base, size_t length, const char *path) {
    if (!base || length == 0) return -1;
    shears_maps_install();
    while (atomic_flag_test_and_set(&shears_maps_lock)) {}
    int slot = -1;
    for (int i = 0; i < SHEARS_MAP_SLOTS; i++) {
        if (atomic_load(&shears_maps[i].base) == 0) {
            size_t k = strlen(path);
            if (k >= SHEARS_MAP_PATH) k = SHEARS_MAP_PATH - 1;
            memcpy(shears_maps[i].path, path, k);
            shears_maps[i].path[k] = 0;
            shears_maps[i].length = length;
            atomic_store(&shears_maps[i].base, (uintptr_t)base);  // published last
            slot = i;
            break;
        }
    }
    atomic_flag_clear(&shears_maps_lock);
    return slot;
}

void shears_mapping_unregister(int slot) {
    if (slot < 0 || slot >= SHEARS_MAP_SLOTS) return;
    atomic_store(&shears_maps[slot].base, 0);
}
