#define _GNU_SOURCE
#include "CRealtime.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct rt_doorbell {
    _Atomic uint32_t sequence;   // futex word: bumped on every ring
    _Atomic uint32_t sleeping;   // 1 while the dispatcher is (about to be) in futex_wait
    _Atomic uint64_t wakes;
    uint32_t words;
    _Atomic uint64_t pending[];  // one bit per source
};

rt_doorbell *rt_doorbell_create(uint32_t words) {
    if (words == 0) words = 1;
    rt_doorbell *bell = calloc(1, sizeof(rt_doorbell) + words * sizeof(_Atomic uint64_t));
    if (!bell) return NULL;
    bell->words = words;
    return bell;
}

void rt_doorbell_destroy(rt_doorbell *bell) { free(bell); }

uint32_t rt_doorbell_words(const rt_doorbell *bell) { return bell->words; }

static void wake_if_sleeping(rt_doorbell *bell) {
    atomic_fetch_add_explicit(&bell->sequence, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&bell->sleeping, memory_order_seq_cst)) {
        atomic_fetch_add_explicit(&bell->wakes, 1, memory_order_relaxed);
        syscall(SYS_futex, &bell->sequence, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
}

void rt_doorbell_ring(rt_doorbell *bell, uint32_t bit) {
    uint32_t word = bit / 64;
    if (word >= bell->words) word = bell->words - 1;
    atomic_fetch_or_explicit(&bell->pending[word], (uint64_t)1 << (bit % 64), memory_order_release);
    wake_if_sleeping(bell);
}

void rt_doorbell_nudge(rt_doorbell *bell) { wake_if_sleeping(bell); }

uint64_t rt_doorbell_take(rt_doorbell *bell, uint32_t index) {
    if (index >= bell->words) return 0;
    if (atomic_load_explicit(&bell->pending[index], memory_order_relaxed) == 0) return 0;
    return atomic_exchange_explicit(&bell->pending[index], 0, memory_order_acquire);
}

static int any_pending(rt_doorbell *bell) {
    for (uint32_t i = 0; i < bell->words; i++)
        if (atomic_load_explicit(&bell->pending[i], memory_order_acquire)) return 1;
    return 0;
}

int rt_doorbell_wait(rt_doorbell *bell, int64_t deadline_ns) {
    uint32_t seen = atomic_load_explicit(&bell->sequence, memory_order_seq_cst);
    if (any_pending(bell)) return 1;
    atomic_store_explicit(&bell->sleeping, 1, memory_order_seq_cst);
    // Dekker pairing with wake_if_sleeping: either we see the producer's bump here, or it sees
    // sleeping == 1 and issues the wake.
    if (atomic_load_explicit(&bell->sequence, memory_order_seq_cst) != seen || any_pending(bell)) {
        atomic_store_explicit(&bell->sleeping, 0, memory_order_relaxed);
        return 1;
    }
    int woken = 1;
    struct timespec ts;
    struct timespec *timeout = NULL;
    if (deadline_ns != INT64_MAX) {
        ts.tv_sec = deadline_ns / 1000000000;
        ts.tv_nsec = deadline_ns % 1000000000;
        timeout = &ts;
    }
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time-out: no drift from relative sleeps.
    long rc = syscall(SYS_futex, &bell->sequence, FUTEX_WAIT_BITSET_PRIVATE, seen, timeout, NULL,
                      FUTEX_BITSET_MATCH_ANY);
    if (rc == -1 && errno == ETIMEDOUT) woken = 0;
    atomic_store_explicit(&bell->sleeping, 0, memory_order_relaxed);
    return woken;
}

uint64_t rt_doorbell_wake_syscalls(const rt_doorbell *bell) {
    return atomic_load_explicit(&((rt_doorbell *)bell)->wakes, memory_order_relaxed);
}

const void *rt_doorbell_futex_word(const rt_doorbell *bell) { return &bell->sequence; }

int64_t rt_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void rt_sleep_until(int64_t deadline_ns) {
    struct timespec ts = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

int rt_pin_current_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int rt_avoid_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return errno;
    if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &set)) return 0;
    CPU_CLR(cpu, &set);
    if (CPU_COUNT(&set) == 0) return EINVAL;
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int rt_allowed_cpu_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
    return CPU_COUNT(&set);
}

int rt_set_fifo(int priority) {
    struct sched_param param = {.sched_priority = priority};
    return pthread_setschedparam(pthread_self(), SCHED_FIFO, &param);
}

int rt_current_policy(void) {
    int policy = 0;
    struct sched_param param;
    pthread_getschedparam(pthread_self(), &policy, &param);
    return policy;
}

int rt_thread_drop_privileges(uint32_t uid, uint32_t gid) {
    if (syscall(SYS_setresgid, gid, gid, gid) != 0) return errno;
    if (syscall(SYS_setresuid, uid, uid, uid) != 0) return errno;
    return 0;
}

void rt_prefault_stack(uint32_t bytes) {
    // Never more than half the thread's own stack: the rest is for the frames above and below,
    // and touching past it would hit the guard page.
    pthread_attr_t attributes;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attributes) == 0) {
        pthread_attr_getstacksize(&attributes, &size);
        pthread_attr_destroy(&attributes);
    }
    if (size > 0 && bytes > size / 2) bytes = (uint32_t)(size / 2);
    volatile unsigned char *buffer = __builtin_alloca(bytes);
    for (uint32_t i = 0; i < bytes; i += 4096) buffer[i] = 0;
}

void rt_name_current_thread(const char *name) {
    char buffer[16];
    strncpy(buffer, name, 15);
    buffer[15] = 0;
    pthread_setname_np(pthread_self(), buffer);
}

static _Atomic int signal_pipe_write = -1;

static void signal_pipe_handler(int signo) {
    int saved = errno;
    int fd = atomic_load(&signal_pipe_write);
    if (fd >= 0) {
        unsigned char byte = (unsigned char)signo;
        (void)!write(fd, &byte, 1);
    }
    errno = saved;
}

int rt_signal_pipe_install(const int *signals, int count) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    int old = atomic_exchange(&signal_pipe_write, fds[1]);
    if (old >= 0) close(old);
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = signal_pipe_handler;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigset_t unblock;
    sigemptyset(&unblock);
    for (int i = 0; i < count; i++) {
        sigaction(signals[i], &action, NULL);
        sigaddset(&unblock, signals[i]);
    }
    // A parent may have started us with these signals blocked (the mask survives exec): unblock
    // them on the calling thread so that the process can always be stopped safely.
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
    return fds[0];
}

void rt_signal_pipe_remove(const int *signals, int count) {
    for (int i = 0; i < count; i++) signal(signals[i], SIG_DFL);
    int fd = atomic_exchange(&signal_pipe_write, -1);
    if (fd >= 0) close(fd);
}

#include <malloc.h>
#include <stdio.h>
#include <sys/mman.h>

int rt_malloc_single_arena(void) {
    // One arena for every thread: glibc otherwise reserves 64 MiB per thread arena, which
    // mlockall counts as locked (VmLck) although it is never touched.
    return mallopt(M_ARENA_MAX, 1) == 1 ? 0 : -1;
}

int64_t rt_munlock_mappings_matching(const char *fragment) {
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps) return -1;
    char line[4096];
    int64_t unlocked = 0;
    while (fgets(line, sizeof line, maps)) {
        if (!strstr(line, fragment)) continue;
        unsigned long start = 0, end = 0;
        if (sscanf(line, "%lx-%lx", &start, &end) != 2 || end <= start) continue;
        if (munlock((void *)start, end - start) == 0) unlocked += (int64_t)(end - start);
    }
    fclose(maps);
    return unlocked;
}

int64_t rt_status_kib(const char *field) {
    FILE *status = fopen("/proc/self/status", "r");
    if (!status) return -1;
    char line[256];
    size_t n = strlen(field);
    int64_t value = -1;
    while (fgets(line, sizeof line, status)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            long long v = -1;
            if (sscanf(line + n + 1, "%lld", &v) == 1) value = v;
            break;
        }
    }
    fclose(status);
    return value;
}

#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

int rt_lock_memory(const char *const *skipped, int count, int64_t *skipped_bytes) {
    // Every mapping, present and future, locked as it is touched (nothing faults in what robotd
    // never uses, e.g. ICU's 38 MB of tables)...
    if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0) return errno;
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps) return 0;
    char line[4096];
    int64_t skippedTotal = 0;
    while (fgets(line, sizeof line, maps)) {
        unsigned long start = 0, end = 0;
        char perms[8] = {0};
        if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) != 3 || end <= start) continue;
        int skip = 0;
        for (int i = 0; i < count; i++) if (strstr(line, skipped[i])) { skip = 1; break; }
        if (skip) {
            // ...except libraries off the control path, which are unlocked again...
            if (munlock((void *)start, end - start) == 0) skippedTotal += (int64_t)(end - start);
            continue;
        }
        // ...and everything else that is mapped now brought in and locked at once (mlock
        // populates): the binary, the Swift runtime, libc, the heap, the stacks.
        if (perms[0] == 'r' || perms[1] == 'w' || perms[2] == 'x') (void)mlock((void *)start, end - start);
    }
    fclose(maps);
    if (skipped_bytes) *skipped_bytes = skippedTotal;
    return 0;
}
