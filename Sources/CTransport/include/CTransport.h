#ifndef CTRANSPORT_H
#define CTRANSPORT_H
#include <stddef.h>
#include <stdint.h>

/// Opens a pseudo-terminal master (raw mode on the slave side) and writes the slave's path into
/// `name`. Returns the master fd or -1 (errno set). Used by the simulator and the tests.
int tr_open_pty(char *name, size_t name_len);
/// Configures `fd` as a raw serial line: baud (0 leaves the speed), data bits 5–8, parity
/// 'N' 'E' 'O', stop bits 1–2, RTS/CTS flow control on/off. Returns 0 or an errno value.
int tr_configure_raw(int fd, uint32_t baud, int data_bits, char parity, int stop_bits, int rtscts);
/// Bytes waiting to be read (FIONREAD), or -1.
int tr_bytes_available(int fd);

#endif
