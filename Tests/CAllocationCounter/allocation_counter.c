// The test executable defines the allocator's entry points, so every library in the process
// (Swift's runtime included) allocates through them; each counts and forwards to glibc's own
// implementation. Linked into the test bundle only, never into swift-dp-train.
#define _GNU_SOURCE
#include "allocation_counter.h"
#include <errno.h>
#include <execinfo.h>
#include <stdatomic.h>
#include <stddef.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_long count;
static atomic_bool tracing;
static _Thread_local bool inside;

static void counted(void) {
    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    if (atomic_load_explicit(&tracing, memory_order_relaxed) && !inside) {
        inside = true;  // backtrace() itself may allocate
        void *frames[16];
        int n = backtrace(frames, 16);
        static const char mark[] = "--- allocation\n";
        write(2, mark, sizeof mark - 1);
        backtrace_symbols_fd(frames, n, 2);
        inside = false;
    }
}

void *malloc(size_t size) { counted(); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { counted(); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { counted(); return __libc_realloc(p, size); }
void *aligned_alloc(size_t alignment, size_t size) { counted(); return __libc_memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    counted();
    void *p = __libc_memalign(alignment, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

long allocation_count(void) { return atomic_load(&count); }
void allocation_trace(bool on) { atomic_store(&tracing, on); }
