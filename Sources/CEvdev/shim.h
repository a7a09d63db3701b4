#include <libevdev/libevdev.h>
#include <linux/input.h>
#include <sys/ioctl.h>

/* EVIOCGKEY(len) and EVIOCGABS(abs) are function-like macros, which Swift cannot import. */

/* The device's key bitmap (a bit per key code, set while the key is down) into `bits`;
   returns the bytes the kernel filled, or -1 with errno (ENOTTY on a FIFO or a plain file). */
static inline int cevdev_key_bitmap(int fd, unsigned char *bits, unsigned int length) {
    return ioctl(fd, EVIOCGKEY(length), bits);
}

/* One absolute axis's record (value, minimum, maximum, fuzz, flat, resolution) into `info`;
   0, or -1 with errno. */
static inline int cevdev_abs_info(int fd, unsigned int code, struct input_absinfo *info) {
    return ioctl(fd, EVIOCGABS(code), info);
}
