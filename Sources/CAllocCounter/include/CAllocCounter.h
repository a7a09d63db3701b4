#ifndef CALLOCCOUNTER_H
#define CALLOCCOUNTER_H
#include <stdint.h>

/// Heap allocations (malloc, calloc, realloc, memalign family) made by the whole process since start.
uint64_t alloc_counter_process_total(void);
/// Heap allocations made by the calling thread since it started.
uint64_t alloc_counter_thread_total(void);
/// Blocks released (free of a non-null pointer) by the calling thread since it started.
uint64_t alloc_counter_thread_frees(void);
/// 1 when the interposer is active (the executable's malloc is the one in use).
int alloc_counter_is_active(void);

#endif
