#ifndef CBLOCKINGCALLCOUNTER_H
#define CBLOCKINGCALLCOUNTER_H
#include <stddef.h>
#include <stdint.h>

/// Counts calls that can block a thread on something other than its own wait, on threads that
/// opted in (test builds only: link this target into a test executable, never into robotd).
/// See docs/scheduler.md, "Proving the dispatch thread never blocks".
typedef enum {
    BLOCKCOUNT_READ = 0,    ///< read/readv/pread/recv/recvfrom/recvmsg on a blocking descriptor
    BLOCKCOUNT_WRITE,       ///< write/writev/pwrite/send/sendto/sendmsg on a blocking descriptor
    BLOCKCOUNT_POLL,        ///< poll/ppoll/select/pselect/epoll_wait/epoll_pwait with a non-zero timeout
    BLOCKCOUNT_FUTEX_WAIT,  ///< syscall(SYS_futex) WAIT/WAIT_BITSET/LOCK_PI/LOCK_PI2/WAIT_REQUEUE_PI, futex_waitv
    BLOCKCOUNT_SLEEP,       ///< nanosleep/clock_nanosleep/usleep/sleep
    BLOCKCOUNT_MUTEX,       ///< pthread_mutex_lock on a mutex another thread holds
    BLOCKCOUNT_COND_WAIT,   ///< pthread_cond_wait/pthread_cond_timedwait
    BLOCKCOUNT_KIND_COUNT
} blockcount_kind;

/// One counted call: `detail` is the descriptor (I/O), the futex or mutex address, the poll
/// timeout in ms (-1 = none) or the sleep in ns.
typedef struct {
    blockcount_kind kind;
    int32_t tid;
    const char *call;
    int64_t detail;
} blockcount_event;

/// Starts counting on the calling thread and zeroes its own counters.
void blockcount_arm_current_thread(void);
/// Stops counting on the calling thread (its own counters are kept until the next arm).
void blockcount_disarm_current_thread(void);
int blockcount_current_thread_is_armed(void);
/// The calling thread's kernel id (gettid), as recorded in blockcount_event.tid.
int32_t blockcount_current_thread_id(void);

/// Futex waits on [start, start + length) are not counted: the scheduler's doorbell, whose wait is
/// the dispatch thread's own idle wait. Returns 0, or -1 when all exemption slots are taken.
int blockcount_exempt_range(const void *start, size_t length);
void blockcount_clear_exemptions(void);

/// Counted calls on all armed threads since start or the last blockcount_reset().
uint64_t blockcount_total(void);
uint64_t blockcount_kind_total(blockcount_kind kind);
/// Counted calls on the calling thread since it was last armed.
uint64_t blockcount_thread_total(void);
uint64_t blockcount_thread_kind_total(blockcount_kind kind);
/// Zeroes the process-wide counters and forgets the recent calls.
void blockcount_reset(void);

/// The most recent counted calls (all armed threads, oldest first), at most `capacity` and at
/// most the 64 the ring keeps. Returns how many were written to `out`.
size_t blockcount_recent(blockcount_event *out, size_t capacity);
const char *blockcount_kind_name(blockcount_kind kind);

#endif
