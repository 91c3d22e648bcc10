/*
 * Heap allocation counter for `cargo xtask bench`, preloaded into a server with LD_PRELOAD.
 *
 * Every malloc, calloc, realloc and aligned allocation adds one to a counter and goes on to
 * glibc's own allocator. On SIGUSR2 the count is written, in decimal, to the file named by
 * ALLOC_COUNT_FILE (written beside it, then renamed, so a reader never sees half of it).
 * Only async-signal-safe calls run in the handler.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static unsigned long long allocations;
static char path[4096];
static char scratch[4100];

static void count(void) { __atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED); }

void *malloc(size_t size) {
    count();
    return __libc_malloc(size);
}

void *calloc(size_t count_, size_t size) {
    count();
    return __libc_calloc(count_, size);
}

void *realloc(void *pointer, size_t size) {
    count();
    return __libc_realloc(pointer, size);
}

void *memalign(size_t alignment, size_t size) {
    count();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    count();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    count();
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) {
        return ENOMEM;
    }
    *out = pointer;
    return 0;
}

static void report(int signal_number) {
    (void)signal_number;
    int saved = errno;
    char digits[24];
    int length = 0;
    unsigned long long value = __atomic_load_n(&allocations, __ATOMIC_RELAXED);
    char reversed[24];
    do {
        reversed[length++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0);
    for (int i = 0; i < length; i++) {
        digits[i] = reversed[length - 1 - i];
    }
    digits[length++] = '\n';
    int file = open(scratch, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (file >= 0) {
        ssize_t written = write(file, digits, (size_t)length);
        close(file);
        if (written == length) {
            rename(scratch, path);
        }
    }
    errno = saved;
}

__attribute__((constructor)) static void start(void) {
    const char *file = getenv("ALLOC_COUNT_FILE");
    if (file == NULL || strlen(file) >= sizeof(path)) {
        return;
    }
    strcpy(path, file);
    strcpy(scratch, file);
    strcat(scratch, ".new");
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = report;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(SIGUSR2, &action, NULL);
}
