// Interposes the allocator entry points and forwards them to glibc's own (__libc_*), counting each
// call. Linked into an executable, these definitions take precedence over libc's for every shared
// library in the process, so Swift runtime allocations are counted too.
#define _GNU_SOURCE
#include "CAllocCounter.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static _Atomic uint64_t process_total;
static __thread uint64_t thread_total;
static __thread uint64_t thread_frees;
static _Atomic int active;

static inline void count(void) {
    atomic_fetch_add_explicit(&process_total, 1, memory_order_relaxed);
    thread_total++;
    if (!atomic_load_explicit(&active, memory_order_relaxed))
        atomic_store_explicit(&active, 1, memory_order_relaxed);
}

void *malloc(size_t size) { count(); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { count(); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { count(); return __libc_realloc(p, size); }
void free(void *p) {
    if (p) thread_frees++;
    __libc_free(p);
}
void *memalign(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
    count();
    void *p = __libc_memalign(alignment, size);
    if (!p && size) return ENOMEM;
    *out = p;
    return 0;
}

uint64_t alloc_counter_process_total(void) { return atomic_load_explicit(&process_total, memory_order_relaxed); }
uint64_t alloc_counter_thread_total(void) { return thread_total; }
uint64_t alloc_counter_thread_frees(void) { return thread_frees; }
int alloc_counter_is_active(void) { return atomic_load_explicit(&active, memory_order_relaxed); }
