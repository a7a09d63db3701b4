#ifndef CBENCHFLOORS_H
#define CBENCHFLOORS_H

#include <stdint.h>

/// Baselines for `robotd bench e2e` and `robotd bench scheduler`, in plain C so that they carry no
/// runtime of ours: what the machine costs before robotd adds anything. Linked into the benchmarks
/// only. Every loop runs on the calling thread (the caller gives it its real-time setup) until its
/// object is stopped; frames follow docs/serial-protocol.md, with the same policy as robotd's
/// ObstacleAvoidingDrive (so each pipeline does the same work per sample).

/// Counters of one pipeline (updated by its threads, read after they stopped).
typedef struct {
    uint64_t frames_in;      // range frames decoded
    uint64_t frames_out;     // motor-command frames written
    uint64_t rejected;       // frames that failed COBS, length or CRC
    uint64_t write_errors;   // write(2) that did not take the whole frame
} bf_counts;

/// Pipeline (a): one thread reads the sensor frame from `fd` (a pty slave, non-blocking), decodes
/// it (COBS, CRC), runs the policy and writes both wheels' motor frames — the pty's own cost.
typedef struct bf_echo bf_echo;
bf_echo *bf_echo_create(int fd);
void bf_echo_serve(bf_echo *echo);
void bf_echo_stop(bf_echo *echo);
bf_counts bf_echo_counts(const bf_echo *echo);
void bf_echo_destroy(bf_echo *echo);

/// Pipeline (b): the same work on three threads, reader → futex → worker → futex → writer, as
/// robotd's serial reader, dispatch thread and actuator writer are arranged.
typedef struct bf_topology bf_topology;
bf_topology *bf_topology_create(int fd);
void bf_topology_reader(bf_topology *t);
void bf_topology_worker(bf_topology *t);
void bf_topology_writer(bf_topology *t);
void bf_topology_stop(bf_topology *t);
bf_counts bf_topology_counts(const bf_topology *t);
void bf_topology_destroy(bf_topology *t);

/// A bare futex ping between two threads: the poster stamps CLOCK_MONOTONIC and wakes; the waiter
/// records (its wake-up instant − the stamp) into a preallocated array. The floor of the scheduler's
/// dispatch latency (post on one thread → handler starts on another).
typedef struct bf_ping bf_ping;
bf_ping *bf_ping_create(uint32_t capacity);
/// Waiter loop (until stopped): one sample per post.
void bf_ping_serve(bf_ping *ping);
/// Whether the waiter is in its loop (pings posted before would not be seen).
int bf_ping_is_ready(const bf_ping *ping);
/// Poster (one thread): one ping, stamped in its own slot, so a late wake-up is counted for every
/// ping that waited for it.
void bf_ping_post(bf_ping *ping);
void bf_ping_stop(bf_ping *ping);
/// Samples recorded so far (nanoseconds); valid until destroy.
const int64_t *bf_ping_samples(const bf_ping *ping, uint32_t *count);
void bf_ping_destroy(bf_ping *ping);

#endif
