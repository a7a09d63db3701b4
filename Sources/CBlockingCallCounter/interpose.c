// Interposes the libc entry points through which a thread can block and counts the calls made on
// armed threads. Linked into an executable, these definitions take precedence over libc's for
// every shared library in the process (Swift runtime, Foundation, libdispatch), like
// CAllocCounter's malloc. Each forwards to the next definition (libc's) found with
// dlsym(RTLD_NEXT). An unarmed thread pays one thread-local load per call.
#undef _FORTIFY_SOURCE  // fortified inline wrappers would clash with these definitions
#define _GNU_SOURCE
#include "CBlockingCallCounter.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

// MARK: state

static __thread int armed;
static __thread int32_t thread_id;
static __thread uint64_t thread_counts[BLOCKCOUNT_KIND_COUNT];

static _Atomic uint64_t process_counts[BLOCKCOUNT_KIND_COUNT];

#define RING 64
typedef struct {
    _Atomic uint64_t sequence;  // index + 1 once the slot is complete
    _Atomic int kind;
    _Atomic int32_t tid;
    _Atomic(const char *) call;
    _Atomic int64_t detail;
} slot;
static slot ring[RING];
static _Atomic uint64_t ring_next;

#define EXEMPTIONS 16
static _Atomic uintptr_t exempt_start[EXEMPTIONS];
static _Atomic uintptr_t exempt_end[EXEMPTIONS];  // 0 = free slot

static void record(blockcount_kind kind, const char *call, int64_t detail) {
    thread_counts[kind]++;
    atomic_fetch_add_explicit(&process_counts[kind], 1, memory_order_relaxed);
    uint64_t index = atomic_fetch_add_explicit(&ring_next, 1, memory_order_relaxed);
    slot *s = &ring[index % RING];
    atomic_store_explicit(&s->sequence, 0, memory_order_relaxed);
    atomic_store_explicit(&s->kind, kind, memory_order_relaxed);
    atomic_store_explicit(&s->tid, thread_id, memory_order_relaxed);
    atomic_store_explicit(&s->call, call, memory_order_relaxed);
    atomic_store_explicit(&s->detail, detail, memory_order_relaxed);
    atomic_store_explicit(&s->sequence, index + 1, memory_order_release);
}

/// O_NONBLOCK unset, or fcntl failed (let the real call report the bad descriptor: not counted).
static int blocking_fd(int fd) {
    int saved = errno;  // the caller must see the real call's errno only
    int flags = fcntl(fd, F_GETFL);
    errno = saved;
    return flags != -1 && !(flags & O_NONBLOCK);
}

static int exempt(uintptr_t address) {
    for (int i = 0; i < EXEMPTIONS; i++) {
        uintptr_t end = atomic_load_explicit(&exempt_end[i], memory_order_acquire);
        if (end && address >= atomic_load_explicit(&exempt_start[i], memory_order_relaxed) && address < end) return 1;
    }
    return 0;
}

// MARK: forwarding

// Resolved on first use (a constructor would miss calls from earlier constructors). dlsym does not
// call any of the functions below, so there is no recursion.
#define REAL(name)                                                                        \
    static __typeof__(&name) real_##name;                                                 \
    static __typeof__(&name) get_##name(void) {                                           \
        __typeof__(&name) f = __atomic_load_n(&real_##name, __ATOMIC_RELAXED);            \
        if (!f) {                                                                         \
            f = (__typeof__(&name))dlsym(RTLD_NEXT, #name);                               \
            __atomic_store_n(&real_##name, f, __ATOMIC_RELAXED);                          \
        }                                                                                 \
        return f;                                                                         \
    }

REAL(read)
REAL(readv)
REAL(pread)
REAL(recv)
REAL(recvfrom)
REAL(recvmsg)
REAL(write)
REAL(writev)
REAL(pwrite)
REAL(send)
REAL(sendto)
REAL(sendmsg)
REAL(poll)
REAL(ppoll)
REAL(select)
REAL(pselect)
REAL(epoll_wait)
REAL(epoll_pwait)
REAL(nanosleep)
REAL(clock_nanosleep)
REAL(usleep)
REAL(sleep)
REAL(pthread_mutex_lock)
REAL(pthread_mutex_trylock)
REAL(pthread_cond_wait)
REAL(pthread_cond_timedwait)
REAL(syscall)

// MARK: descriptors

#define IO(kind, name, fd, blocks) \
    if (armed && (blocks) && blocking_fd(fd)) record(kind, #name, fd)

ssize_t read(int fd, void *buf, size_t n) {
    IO(BLOCKCOUNT_READ, read, fd, 1);
    return get_read()(fd, buf, n);
}
ssize_t readv(int fd, const struct iovec *iov, int count) {
    IO(BLOCKCOUNT_READ, readv, fd, 1);
    return get_readv()(fd, iov, count);
}
ssize_t pread(int fd, void *buf, size_t n, off_t offset) {
    IO(BLOCKCOUNT_READ, pread, fd, 1);
    return get_pread()(fd, buf, n, offset);
}
ssize_t recv(int fd, void *buf, size_t n, int flags) {
    IO(BLOCKCOUNT_READ, recv, fd, !(flags & MSG_DONTWAIT));
    return get_recv()(fd, buf, n, flags);
}
ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *from, socklen_t *length) {
    IO(BLOCKCOUNT_READ, recvfrom, fd, !(flags & MSG_DONTWAIT));
    return get_recvfrom()(fd, buf, n, flags, from, length);
}
ssize_t recvmsg(int fd, struct msghdr *message, int flags) {
    IO(BLOCKCOUNT_READ, recvmsg, fd, !(flags & MSG_DONTWAIT));
    return get_recvmsg()(fd, message, flags);
}
ssize_t write(int fd, const void *buf, size_t n) {
    IO(BLOCKCOUNT_WRITE, write, fd, 1);
    return get_write()(fd, buf, n);
}
ssize_t writev(int fd, const struct iovec *iov, int count) {
    IO(BLOCKCOUNT_WRITE, writev, fd, 1);
    return get_writev()(fd, iov, count);
}
ssize_t pwrite(int fd, const void *buf, size_t n, off_t offset) {
    IO(BLOCKCOUNT_WRITE, pwrite, fd, 1);
    return get_pwrite()(fd, buf, n, offset);
}
ssize_t send(int fd, const void *buf, size_t n, int flags) {
    IO(BLOCKCOUNT_WRITE, send, fd, !(flags & MSG_DONTWAIT));
    return get_send()(fd, buf, n, flags);
}
ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t length) {
    IO(BLOCKCOUNT_WRITE, sendto, fd, !(flags & MSG_DONTWAIT));
    return get_sendto()(fd, buf, n, flags, to, length);
}
ssize_t sendmsg(int fd, const struct msghdr *message, int flags) {
    IO(BLOCKCOUNT_WRITE, sendmsg, fd, !(flags & MSG_DONTWAIT));
    return get_sendmsg()(fd, message, flags);
}

// MARK: waiting for descriptors

static int64_t timespec_ms(const struct timespec *t) { return t ? t->tv_sec * 1000 + t->tv_nsec / 1000000 : -1; }
static int timespec_nonzero(const struct timespec *t) { return !t || t->tv_sec || t->tv_nsec; }

int poll(struct pollfd *fds, nfds_t n, int timeout) {
    if (armed && timeout != 0) record(BLOCKCOUNT_POLL, "poll", timeout);
    return get_poll()(fds, n, timeout);
}
int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *mask) {
    if (armed && timespec_nonzero(timeout)) record(BLOCKCOUNT_POLL, "ppoll", timespec_ms(timeout));
    return get_ppoll()(fds, n, timeout, mask);
}
int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *timeout) {
    if (armed && (!timeout || timeout->tv_sec || timeout->tv_usec))
        record(BLOCKCOUNT_POLL, "select", timeout ? timeout->tv_sec * 1000 + timeout->tv_usec / 1000 : -1);
    return get_select()(n, r, w, e, timeout);
}
int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *timeout, const sigset_t *mask) {
    if (armed && timespec_nonzero(timeout)) record(BLOCKCOUNT_POLL, "pselect", timespec_ms(timeout));
    return get_pselect()(n, r, w, e, timeout, mask);
}
int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout) {
    if (armed && timeout != 0) record(BLOCKCOUNT_POLL, "epoll_wait", timeout);
    return get_epoll_wait()(epfd, events, max, timeout);
}
int epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout, const sigset_t *mask) {
    if (armed && timeout != 0) record(BLOCKCOUNT_POLL, "epoll_pwait", timeout);
    return get_epoll_pwait()(epfd, events, max, timeout, mask);
}

// MARK: sleeping

static int64_t timespec_ns(const struct timespec *t) { return t ? t->tv_sec * 1000000000 + t->tv_nsec : -1; }

int nanosleep(const struct timespec *duration, struct timespec *remaining) {
    if (armed) record(BLOCKCOUNT_SLEEP, "nanosleep", timespec_ns(duration));
    return get_nanosleep()(duration, remaining);
}
int clock_nanosleep(clockid_t clock, int flags, const struct timespec *t, struct timespec *remaining) {
    // With TIMER_ABSTIME the detail is the absolute deadline, not a duration.
    if (armed) record(BLOCKCOUNT_SLEEP, "clock_nanosleep", timespec_ns(t));
    return get_clock_nanosleep()(clock, flags, t, remaining);
}
// glibc's usleep and sleep call its internal nanosleep directly, so each is counted once, here.
int usleep(useconds_t microseconds) {
    if (armed) record(BLOCKCOUNT_SLEEP, "usleep", (int64_t)microseconds * 1000);
    return get_usleep()(microseconds);
}
unsigned sleep(unsigned seconds) {
    if (armed) record(BLOCKCOUNT_SLEEP, "sleep", (int64_t)seconds * 1000000000);
    return get_sleep()(seconds);
}

// MARK: locks

// glibc's own futex calls (inside pthread_mutex_lock, sem_wait, …) are inline syscalls that no
// interposer sees, hence the pthread entry points. trylock first: only a lock that is held
// elsewhere (one that would wait) is counted.
int pthread_mutex_lock(pthread_mutex_t *mutex) {
    if (armed) {
        int rc = get_pthread_mutex_trylock()(mutex);
        if (rc != EBUSY) return rc;
        record(BLOCKCOUNT_MUTEX, "pthread_mutex_lock", (int64_t)(uintptr_t)mutex);
    }
    return get_pthread_mutex_lock()(mutex);
}
int pthread_cond_wait(pthread_cond_t *cond, pthread_mutex_t *mutex) {
    if (armed) record(BLOCKCOUNT_COND_WAIT, "pthread_cond_wait", (int64_t)(uintptr_t)cond);
    return get_pthread_cond_wait()(cond, mutex);
}
int pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mutex, const struct timespec *deadline) {
    if (armed) record(BLOCKCOUNT_COND_WAIT, "pthread_cond_timedwait", (int64_t)(uintptr_t)cond);
    return get_pthread_cond_timedwait()(cond, mutex, deadline);
}

// Swift's Synchronization.Mutex (FUTEX_LOCK_PI) and CRealtime's doorbell (FUTEX_WAIT_BITSET) reach
// the kernel through syscall(SYS_futex, …). The variadic arguments are forwarded as six longs, as
// the kernel ABI passes them; surplus ones are ignored by the kernel.
long syscall(long number, ...) {
    va_list list;
    va_start(list, number);
    long a[6];
    for (int i = 0; i < 6; i++) a[i] = va_arg(list, long);
    va_end(list);
    if (armed) {
        if (number == SYS_futex) {
            int command = (int)a[1] & FUTEX_CMD_MASK;
            int waits = command == FUTEX_WAIT || command == FUTEX_WAIT_BITSET || command == FUTEX_LOCK_PI
                        || command == 13 /* FUTEX_LOCK_PI2 */ || command == FUTEX_WAIT_REQUEUE_PI;
            if (waits && !exempt((uintptr_t)a[0])) {
                static const char *names[14] = {[FUTEX_WAIT] = "futex(WAIT)", [FUTEX_WAIT_BITSET] = "futex(WAIT_BITSET)",
                                                [FUTEX_LOCK_PI] = "futex(LOCK_PI)", [13] = "futex(LOCK_PI2)",
                                                [FUTEX_WAIT_REQUEUE_PI] = "futex(WAIT_REQUEUE_PI)"};
                record(BLOCKCOUNT_FUTEX_WAIT, names[command], a[0]);
            }
        }
#ifdef SYS_futex_waitv
        else if (number == SYS_futex_waitv) {
            record(BLOCKCOUNT_FUTEX_WAIT, "futex_waitv", a[0]);
        }
#endif
    }
    return get_syscall()(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

// MARK: API

void blockcount_arm_current_thread(void) {
    for (int i = 0; i < BLOCKCOUNT_KIND_COUNT; i++) thread_counts[i] = 0;
    thread_id = (int32_t)gettid();
    armed = 1;
}
void blockcount_disarm_current_thread(void) { armed = 0; }
int blockcount_current_thread_is_armed(void) { return armed; }
int32_t blockcount_current_thread_id(void) { return (int32_t)gettid(); }

int blockcount_exempt_range(const void *start, size_t length) {
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;  // registration only, never on a hot path
    int result = -1;
    get_pthread_mutex_lock()(&lock);
    for (int i = 0; i < EXEMPTIONS; i++) {
        if (atomic_load_explicit(&exempt_end[i], memory_order_relaxed) == 0) {
            atomic_store_explicit(&exempt_start[i], (uintptr_t)start, memory_order_relaxed);
            atomic_store_explicit(&exempt_end[i], (uintptr_t)start + length, memory_order_release);
            result = 0;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return result;
}
void blockcount_clear_exemptions(void) {
    for (int i = 0; i < EXEMPTIONS; i++) atomic_store_explicit(&exempt_end[i], 0, memory_order_release);
}

uint64_t blockcount_total(void) {
    uint64_t total = 0;
    for (int i = 0; i < BLOCKCOUNT_KIND_COUNT; i++) total += atomic_load_explicit(&process_counts[i], memory_order_relaxed);
    return total;
}
uint64_t blockcount_kind_total(blockcount_kind kind) {
    return kind < BLOCKCOUNT_KIND_COUNT ? atomic_load_explicit(&process_counts[kind], memory_order_relaxed) : 0;
}
uint64_t blockcount_thread_total(void) {
    uint64_t total = 0;
    for (int i = 0; i < BLOCKCOUNT_KIND_COUNT; i++) total += thread_counts[i];
    return total;
}
uint64_t blockcount_thread_kind_total(blockcount_kind kind) { return kind < BLOCKCOUNT_KIND_COUNT ? thread_counts[kind] : 0; }

void blockcount_reset(void) {
    for (int i = 0; i < BLOCKCOUNT_KIND_COUNT; i++) atomic_store_explicit(&process_counts[i], 0, memory_order_relaxed);
    for (int i = 0; i < RING; i++) atomic_store_explicit(&ring[i].sequence, 0, memory_order_relaxed);
    atomic_store_explicit(&ring_next, 0, memory_order_relaxed);
}

size_t blockcount_recent(blockcount_event *out, size_t capacity) {
    uint64_t next = atomic_load_explicit(&ring_next, memory_order_acquire);
    uint64_t first = next > RING ? next - RING : 0;
    if (next - first > capacity) first = next - capacity;
    size_t written = 0;
    for (uint64_t index = first; index < next; index++) {
        slot *s = &ring[index % RING];
        if (atomic_load_explicit(&s->sequence, memory_order_acquire) != index + 1) continue;  // being rewritten
        blockcount_event e = {
            .kind = (blockcount_kind)atomic_load_explicit(&s->kind, memory_order_relaxed),
            .tid = atomic_load_explicit(&s->tid, memory_order_relaxed),
            .call = atomic_load_explicit(&s->call, memory_order_relaxed),
            .detail = atomic_load_explicit(&s->detail, memory_order_relaxed),
        };
        if (atomic_load_explicit(&s->sequence, memory_order_acquire) != index + 1) continue;
        out[written++] = e;
    }
    return written;
}

const char *blockcount_kind_name(blockcount_kind kind) {
    static const char *names[BLOCKCOUNT_KIND_COUNT] = {"read", "write", "poll", "futex-wait", "sleep", "mutex", "cond-wait"};
    return kind < BLOCKCOUNT_KIND_COUNT ? names[kind] : "?";
}
