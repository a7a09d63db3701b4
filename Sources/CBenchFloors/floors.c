#define _GNU_SOURCE
#include "CBenchFloors.h"

#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

// MARK: clock and futex

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void futex_wake(_Atomic uint32_t *word) {
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/// Waits until *word differs from `seen` (or 50 ms pass, so a stop is noticed).
static void futex_wait(_Atomic uint32_t *word, uint32_t seen) {
    struct timespec timeout = {.tv_sec = 0, .tv_nsec = 50 * 1000000};
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, seen, &timeout, NULL, 0);
}

// MARK: frames (docs/serial-protocol.md), written from the document

enum { MAX_WIRE = 80, TYPE_MOTOR = 0x10, TYPE_RANGE = 0x22 };

static uint16_t crc16(const uint8_t *p, size_t n) {
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)p[i] << 8;
        for (int b = 0; b < 8; b++) crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

/// COBS-decodes `n` bytes (no delimiter) into `out`; returns the length or -1.
static int cobs_decode(const uint8_t *in, int n, uint8_t *out) {
    int r = 0, w = 0;
    while (r < n) {
        int code = in[r];
        if (code == 0 || r + code > n) return -1;
        r++;
        for (int i = 1; i < code; i++) {
            if (in[r] == 0) return -1;
            out[w++] = in[r++];
        }
        if (code != 0xFF && r < n) out[w++] = 0;
    }
    return w;
}

/// COBS-encodes `n` bytes into `out` and appends the 0x00 delimiter; returns the wire length.
static int cobs_encode(const uint8_t *in, int n, uint8_t *out) {
    int code_at = 0, w = 1;
    uint8_t code = 1;
    for (int i = 0; i < n; i++) {
        if (in[i] == 0) {
            out[code_at] = code;
            code_at = w++;
            code = 1;
        } else {
            out[w++] = in[i];
            if (++code == 0xFF) {
                out[code_at] = code;
                code_at = w++;
                code = 1;
            }
        }
    }
    out[code_at] = code;
    out[w++] = 0;
    return w;
}

static int encode_motor(uint8_t sequence, uint8_t channel, float value, uint8_t *out) {
    uint8_t body[11] = {TYPE_MOTOR, sequence, channel, 0, 0};
    memcpy(body + 5, &value, 4);  // little-endian on every target this runs on
    uint16_t crc = crc16(body, 9);
    body[9] = (uint8_t)(crc >> 8);
    body[10] = (uint8_t)crc;
    return cobs_encode(body, 11, out);
}

/// Accumulates bytes up to a 0x00 and checks the frame; a range frame's reading lands in *range.
typedef struct {
    uint8_t pending[MAX_WIRE];
    int count;
} decoder;

/// Returns 1 when a range frame completed (reading in *range), 0 otherwise; counts rejects.
static int decoder_feed(decoder *d, uint8_t byte, double *range, uint64_t *rejected) {
    if (byte != 0) {
        if (d->count == MAX_WIRE) { d->count = 0; (*rejected)++; }
        d->pending[d->count++] = byte;
        return 0;
    }
    int n = d->count;
    d->count = 0;
    if (n == 0) return 0;
    uint8_t frame[MAX_WIRE];
    int m = cobs_decode(d->pending, n, frame);
    if (m < 4 || crc16(frame, (size_t)m - 2) != (uint16_t)(frame[m - 2] << 8 | frame[m - 1])) { (*rejected)++; return 0; }
    if (frame[0] != TYPE_RANGE || m - 4 != 9) return 0;
    float value;
    memcpy(&value, frame + 2 + 4, 4);
    uint8_t status = frame[2 + 8];
    *range = status == 0 ? (double)value : status == 2 ? 4.0 : __builtin_nan("");
    return 1;
}

// MARK: the policy (robotd's ObstacleAvoidingDrive, default parameters)

typedef struct { int turning; } policy;

static void policy_step(policy *p, double r, double *left, double *right) {
    if (r != r) { *left = 0; *right = 0; return; }
    if (!p->turning && r < 0.45) p->turning = 1;
    else if (p->turning && r > 0.9) p->turning = 0;
    if (p->turning) { *left = -5; *right = 5; return; }
    double scale = r >= 1.2 ? 1 : ((r - 0.45) / (1.2 - 0.45) > 0.2 ? (r - 0.45) / (1.2 - 0.45) : 0.2);
    *left = 10 * scale;
    *right = 10 * scale;
}

/// Both wheels' frames, one write(2) each (as robotd's serial back end does).
static void write_wheels(int fd, uint8_t *sequence, double left, double right, bf_counts *counts) {
    uint8_t wire[MAX_WIRE];
    int n = encode_motor(++*sequence, 0, (float)left, wire);
    if (write(fd, wire, (size_t)n) == n) counts->frames_out++; else counts->write_errors++;
    n = encode_motor(++*sequence, 1, (float)right, wire);
    if (write(fd, wire, (size_t)n) == n) counts->frames_out++; else counts->write_errors++;
}

/// Waits up to 50 ms for bytes on `fd`; returns what read(2) returned (0 on time-out).
static ssize_t wait_read(int fd, uint8_t *buffer, size_t size) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 50) <= 0) return 0;
    ssize_t n = read(fd, buffer, size);
    return n > 0 ? n : 0;
}

// MARK: (a) one thread

struct bf_echo {
    int fd;
    _Atomic int stop;
    bf_counts counts;
};

bf_echo *bf_echo_create(int fd) {
    bf_echo *e = calloc(1, sizeof(bf_echo));
    if (e) e->fd = fd;
    return e;
}

void bf_echo_serve(bf_echo *e) {
    decoder d = {.count = 0};
    policy p = {0};
    uint8_t sequence = 0;
    uint8_t buffer[4096];
    while (!atomic_load_explicit(&e->stop, memory_order_relaxed)) {
        ssize_t n = wait_read(e->fd, buffer, sizeof buffer);
        for (ssize_t i = 0; i < n; i++) {
            double range;
            if (!decoder_feed(&d, buffer[i], &range, &e->counts.rejected)) continue;
            e->counts.frames_in++;
            double left, right;
            policy_step(&p, range, &left, &right);
            write_wheels(e->fd, &sequence, left, right, &e->counts);
        }
    }
}

void bf_echo_stop(bf_echo *e) { atomic_store(&e->stop, 1); }
bf_counts bf_echo_counts(const bf_echo *e) { return e->counts; }
void bf_echo_destroy(bf_echo *e) { free(e); }

// MARK: (b) three threads

struct bf_topology {
    int fd;
    _Atomic int stop;
    // reader → worker: the latest reading
    _Atomic uint32_t to_worker;
    _Atomic uint64_t range_bits;
    // worker → writer: the latest wheel speeds
    _Atomic uint32_t to_writer;
    _Atomic uint64_t left_bits, right_bits;
    bf_counts counts;   // frames_in, rejected: reader; frames_out, write_errors: writer
};

bf_topology *bf_topology_create(int fd) {
    bf_topology *t = calloc(1, sizeof(bf_topology));
    if (t) t->fd = fd;
    return t;
}

static uint64_t bits(double v) { uint64_t b; memcpy(&b, &v, 8); return b; }
static double value(uint64_t b) { double v; memcpy(&v, &b, 8); return v; }

void bf_topology_reader(bf_topology *t) {
    decoder d = {.count = 0};
    uint8_t buffer[4096];
    while (!atomic_load_explicit(&t->stop, memory_order_relaxed)) {
        ssize_t n = wait_read(t->fd, buffer, sizeof buffer);
        for (ssize_t i = 0; i < n; i++) {
            double range;
            if (!decoder_feed(&d, buffer[i], &range, &t->counts.rejected)) continue;
            t->counts.frames_in++;
            atomic_store_explicit(&t->range_bits, bits(range), memory_order_relaxed);
            atomic_fetch_add_explicit(&t->to_worker, 1, memory_order_release);
            futex_wake(&t->to_worker);
        }
    }
}

void bf_topology_worker(bf_topology *t) {
    policy p = {0};
    uint32_t seen = atomic_load(&t->to_worker);
    while (!atomic_load_explicit(&t->stop, memory_order_relaxed)) {
        uint32_t now = atomic_load_explicit(&t->to_worker, memory_order_acquire);
        if (now == seen) { futex_wait(&t->to_worker, seen); continue; }
        seen = now;
        if (atomic_load_explicit(&t->stop, memory_order_relaxed)) break;
        double left, right;
        policy_step(&p, value(atomic_load_explicit(&t->range_bits, memory_order_relaxed)), &left, &right);
        atomic_store_explicit(&t->left_bits, bits(left), memory_order_relaxed);
        atomic_store_explicit(&t->right_bits, bits(right), memory_order_relaxed);
        atomic_fetch_add_explicit(&t->to_writer, 1, memory_order_release);
        futex_wake(&t->to_writer);
    }
}

void bf_topology_writer(bf_topology *t) {
    uint8_t sequence = 0;
    uint32_t seen = atomic_load(&t->to_writer);
    while (!atomic_load_explicit(&t->stop, memory_order_relaxed)) {
        uint32_t now = atomic_load_explicit(&t->to_writer, memory_order_acquire);
        if (now == seen) { futex_wait(&t->to_writer, seen); continue; }
        seen = now;
        if (atomic_load_explicit(&t->stop, memory_order_relaxed)) break;
        write_wheels(t->fd, &sequence, value(atomic_load_explicit(&t->left_bits, memory_order_relaxed)),
                     value(atomic_load_explicit(&t->right_bits, memory_order_relaxed)), &t->counts);
    }
}

void bf_topology_stop(bf_topology *t) {
    atomic_store(&t->stop, 1);
    atomic_fetch_add(&t->to_worker, 1);
    futex_wake(&t->to_worker);
    atomic_fetch_add(&t->to_writer, 1);
    futex_wake(&t->to_writer);
}

bf_counts bf_topology_counts(const bf_topology *t) { return t->counts; }
void bf_topology_destroy(bf_topology *t) { free(t); }

// MARK: futex ping

struct bf_ping {
    _Atomic uint32_t word;       // pings posted so far
    _Atomic int ready;
    _Atomic int stop;
    uint32_t capacity;
    _Atomic uint32_t count;      // samples recorded
    int64_t *posted;             // per ping: when it was posted
    int64_t *samples;            // per ping: its wake-up latency
};

bf_ping *bf_ping_create(uint32_t capacity) {
    bf_ping *p = calloc(1, sizeof(bf_ping));
    if (!p) return NULL;
    p->capacity = capacity;
    p->posted = calloc(capacity ? capacity : 1, sizeof(int64_t));
    p->samples = calloc(capacity ? capacity : 1, sizeof(int64_t));
    if (!p->posted || !p->samples) { free(p->posted); free(p->samples); free(p); return NULL; }
    return p;
}

void bf_ping_serve(bf_ping *p) {
    uint32_t seen = atomic_load(&p->word);
    atomic_store(&p->ready, 1);
    while (1) {
        uint32_t now = atomic_load_explicit(&p->word, memory_order_acquire);
        if (now == seen) {
            if (atomic_load_explicit(&p->stop, memory_order_relaxed)) break;
            futex_wait(&p->word, seen);
            continue;
        }
        int64_t woke = now_ns();
        // Every ping since the last wake-up, each from its own post: a slow wake-up that two pings
        // waited for counts twice, never hides behind the second.
        for (uint32_t k = seen; k != now && k < p->capacity; k++) p->samples[k] = woke - p->posted[k];
        seen = now;
        atomic_store_explicit(&p->count, now < p->capacity ? now : p->capacity, memory_order_release);
    }
}

int bf_ping_is_ready(const bf_ping *p) { return atomic_load(&((bf_ping *)p)->ready); }

void bf_ping_post(bf_ping *p) {
    uint32_t k = atomic_load_explicit(&p->word, memory_order_relaxed);  // the one poster's own counter
    if (k < p->capacity) p->posted[k] = now_ns();
    atomic_store_explicit(&p->word, k + 1, memory_order_release);
    futex_wake(&p->word);
}

void bf_ping_stop(bf_ping *p) {
    atomic_store(&p->stop, 1);
    futex_wake(&p->word);
}

const int64_t *bf_ping_samples(const bf_ping *p, uint32_t *count) {
    *count = atomic_load_explicit(&((bf_ping *)p)->count, memory_order_acquire);
    return p->samples;
}

void bf_ping_destroy(bf_ping *p) {
    if (!p) return;
    free(p->posted);
    free(p->samples);
    free(p);
}
