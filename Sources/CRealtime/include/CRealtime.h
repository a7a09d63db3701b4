#ifndef CREALTIME_H
#define CREALTIME_H

#include <stdint.h>

/// A doorbell: producers ring it (marking which source has work), the dispatch thread sleeps on it
/// until a bit is set or an absolute CLOCK_MONOTONIC instant passes. Built on a futex so that a
/// post costs one atomic OR, one atomic add, and a wake syscall only when the dispatcher sleeps.
typedef struct rt_doorbell rt_doorbell;

rt_doorbell *rt_doorbell_create(uint32_t words);
void rt_doorbell_destroy(rt_doorbell *bell);
/// Marks `bit` pending and wakes the sleeper if there is one. Safe from any thread.
void rt_doorbell_ring(rt_doorbell *bell, uint32_t bit);
/// Wakes the sleeper without marking a source (used to stop the loop).
void rt_doorbell_nudge(rt_doorbell *bell);
/// Atomically takes (and clears) the pending bits of word `index`.
uint64_t rt_doorbell_take(rt_doorbell *bell, uint32_t index);
uint32_t rt_doorbell_words(const rt_doorbell *bell);
/// Sleeps until a bit is pending, a nudge arrives, or CLOCK_MONOTONIC reaches `deadline_ns`
/// (INT64_MAX: no deadline). Returns 1 if woken by ringing/nudge, 0 on time-out.
int rt_doorbell_wait(rt_doorbell *bell, int64_t deadline_ns);
/// Number of futex wake syscalls issued so far (for benchmarks).
uint64_t rt_doorbell_wake_syscalls(const rt_doorbell *bell);
/// The 32-bit futex word rt_doorbell_wait sleeps on: what a blocking-call counter exempts as the
/// dispatch thread's own wait (CBlockingCallCounter).
const void *rt_doorbell_futex_word(const rt_doorbell *bell);

int64_t rt_monotonic_ns(void);
/// clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) until `deadline_ns`, restarting on EINTR.
void rt_sleep_until(int64_t deadline_ns);

/// Pins the calling thread to one CPU. Returns 0 or an errno value.
int rt_pin_current_thread(int cpu);
/// Lets the calling thread run on every CPU it may use now except `cpu` (left as is when `cpu` is
/// its only one). Returns 0 or an errno value (EINVAL when `cpu` was its only CPU).
int rt_avoid_cpu(int cpu);
/// Number of CPUs this process may run on.
int rt_allowed_cpu_count(void);
/// SCHED_FIFO at `priority` for the calling thread. Returns 0 or an errno value.
int rt_set_fifo(int priority);
/// The calling thread's scheduling policy (SCHED_OTHER = 0, SCHED_FIFO = 1).
int rt_current_policy(void);
/// Changes the credentials of the calling thread only (raw syscall; glibc's setresuid changes
/// every thread). Used by tests to run real-time setup without privilege. Returns 0 or errno.
int rt_thread_drop_privileges(uint32_t uid, uint32_t gid);
/// Names the calling thread (15 bytes kept), visible in top/ps.
void rt_name_current_thread(const char *name);
/// Touches `bytes` of stack so that page faults happen before the loop starts.
void rt_prefault_stack(uint32_t bytes);

/// Self-pipe for signals: installs an async-signal-safe handler for each of `signals` that writes
/// the signal number (one byte) to a pipe, and returns the pipe's read end (-1 on error). The
/// handler's only state is that pipe's write end (a signal handler cannot be given context).
int rt_signal_pipe_install(const int *signals, int count);
/// Restores the default action of `signals` and closes the pipe's write end (the reader sees EOF).
void rt_signal_pipe_remove(const int *signals, int count);

/// One malloc arena for the whole process (M_ARENA_MAX = 1): call before threads start. 0 on success.
int rt_malloc_single_arena(void);
/// munlock every mapping of /proc/self/maps whose line contains `fragment` (a library's name);
/// returns the bytes unlocked, or -1.
int64_t rt_munlock_mappings_matching(const char *fragment);
/// A `kB` field of /proc/self/status (VmRSS, VmLck, VmHWM…); -1 when absent.
int64_t rt_status_kib(const char *field);

/// Locks memory for a real-time process: mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT), then the
/// mappings whose /proc/self/maps line contains one of `skipped` unlocked (never faulted in), and
/// every other present mapping populated and locked with mlock. 0, or the errno of mlockall.
int rt_lock_memory(const char *const *skipped, int count, int64_t *skipped_bytes);

#endif
