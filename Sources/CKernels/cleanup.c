// Temporary files removed when the process is killed by SIGINT, SIGTERM or SIGHUP: a fixed table
// of paths that the signal handler unlinks (unlink is async-signal-safe), then the signal's default
// action runs. Registration is not reentrant from signal handlers and is guarded by a spin flag.
#include "kernels.h"
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define SHEARS_CLEANUP_SLOTS 64
#define SHEARS_CLEANUP_PATH 4096

static char shears_cleanup_paths[SHEARS_CLEANUP_SLOTS][SHEARS_CLEANUP_PATH];
static volatile sig_atomic_t shears_cleanup_used[SHEARS_CLEANUP_SLOTS];
static atomic_flag shears_cleanup_lock = ATOMIC_FLAG_INIT;
static atomic_int shears_cleanup_installed = 0;

void shears_cleanup_unlink_all(void) {
    for (int i = 0; i < SHEARS_CLEANUP_SLOTS; i++) {
        if (shears_cleanup_used[i]) unlink(shears_cleanup_paths[i]);
    }
}

static void shears_cleanup_handler(int sig) {
    shears_cleanup_unlink_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void shears_cleanup_install(void) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&shears_cleanup_installed, &expected, 1)) return;
    int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (int k = 0; k < 3; k++) {
        struct sigaction old;
        if (sigaction(sigs[k], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;  // keep nohup's choice
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = shears_cleanup_handler;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[k], &sa, NULL);
    }
}

int shears_cleanup_register(const char *path) {
    size_t n = strlen(path);
    if (n >= SHEARS_CLEANUP_PATH) return -1;
    shears_cleanup_install();
    while (atomic_flag_test_and_set(&shears_cleanup_lock)) {}
    int slot = -1;
    for (int i = 0; i < SHEARS_CLEANUP_SLOTS; i++) {
        if (!shears_cleanup_used[i]) {
            memcpy(shears_cleanup_paths[i], path, n + 1);
            shears_cleanup_used[i] = 1;
            slot = i;
            break;
        }
    }
    atomic_flag_clear(&shears_cleanup_lock);
    return slot;
}

void shears_cleanup_unregister(int slot) {
    if (slot < 0 || slot >= SHEARS_CLEANUP_SLOTS) return;
    shears_cleanup_used[slot] = 0;
}
