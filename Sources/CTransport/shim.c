#define _GNU_SOURCE
#include "CTransport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

int tr_open_pty(char *name, size_t name_len) {
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return -1;
    if (grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, name_len) != 0) {
        int saved = errno;
        close(master);
        errno = saved;
        return -1;
    }
    struct termios t;
    if (tcgetattr(master, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(master, TCSANOW, &t);
    }
    return master;
}

static speed_t speed_for(uint32_t baud) {
    switch (baud) {
    case 1200: return B1200; case 2400: return B2400; case 4800: return B4800; case 9600: return B9600;
    case 19200: return B19200; case 38400: return B38400; case 57600: return B57600; case 115200: return B115200;
    case 230400: return B230400; case 460800: return B460800; case 500000: return B500000; case 576000: return B576000;
    case 921600: return B921600; case 1000000: return B1000000; case 1500000: return B1500000; case 2000000: return B2000000;
    case 3000000: return B3000000; case 4000000: return B4000000;
    default: return 0;
    }
}

int tr_configure_raw(int fd, uint32_t baud, int data_bits, char parity, int stop_bits, int rtscts) {
    struct termios t;
    if (tcgetattr(fd, &t) != 0) return errno;
    cfmakeraw(&t);
    t.c_cflag |= CLOCAL | CREAD;
    t.c_cflag &= ~CSIZE;
    switch (data_bits) {
    case 5: t.c_cflag |= CS5; break;
    case 6: t.c_cflag |= CS6; break;
    case 7: t.c_cflag |= CS7; break;
    case 8: t.c_cflag |= CS8; break;
    default: return EINVAL;
    }
    t.c_cflag &= ~(PARENB | PARODD);
    if (parity == 'E') t.c_cflag |= PARENB;
    else if (parity == 'O') t.c_cflag |= PARENB | PARODD;
    else if (parity != 'N') return EINVAL;
    if (stop_bits == 2) t.c_cflag |= CSTOPB; else if (stop_bits == 1) t.c_cflag &= ~CSTOPB; else return EINVAL;
    if (rtscts) t.c_cflag |= CRTSCTS; else t.c_cflag &= ~CRTSCTS;
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    if (baud != 0) {
        speed_t speed = speed_for(baud);
        if (speed == 0) return EINVAL;
        cfsetispeed(&t, speed);
        cfsetospeed(&t, speed);
    }
    if (tcsetattr(fd, TCSANOW, &t) != 0) return errno;
    return 0;
}

int tr_bytes_available(int fd) {
    int n = 0;
    if (ioctl(fd, FIONREAD, &n) != 0) return -1;
    return n;
}
