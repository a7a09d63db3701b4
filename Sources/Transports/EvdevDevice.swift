import CEvdev
import Glibc
import Platform

/// A real input device (/dev/input/eventN) through libevdev: optional exclusive grab, and the
/// SYN_DROPPED resync libevdev documents (read in sync mode until -EAGAIN, then carry on). Each
/// event goes to the same `InputFrameAssembler` that raw streams use.
public final class EvdevDevice: @unchecked Sendable {
    // @unchecked: used by its reader thread only after init.
    private let fd: Int32
    private let device: OpaquePointer
    public let path: String
    public let name: String

    public init(path: String, grab: Bool = false) throws(InputError) {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw InputError("\(path): \(SystemErrorWords.text(errno))") }
        var device: OpaquePointer?
        let rc = libevdev_new_from_fd(fd, &device)
        guard rc == 0, let device else {
            close(fd)
            throw InputError("\(path): not an evdev device (libevdev: \(SystemErrorWords.text(-rc)))")
        }
        if grab && libevdev_grab(device, LIBEVDEV_GRAB) != 0 {
            libevdev_free(device)
            close(fd)
            throw InputError("\(path): could not grab the device (another program holds it?)")
        }
        self.fd = fd
        self.device = device
        self.path = path
        name = libevdev_get_name(device).map { String(cString: $0) } ?? "?"
    }

    /// The device's raw range for an axis, to configure normalisation from the hardware.
    public func range(of axisCode: String) -> (minimum: Int32, maximum: Int32)? {
        guard let code = InputEvent.code(named: axisCode), let info = libevdev_get_abs_info(device, UInt32(code.code)) else { return nil }
        return (info.pointee.minimum, info.pointee.maximum)
    }

    /// The current position of each of these absolute axes the device has (libevdev's state, read
    /// at open and kept by it since), then a SYN_REPORT; nothing if it has none of them. The kernel
    /// reports an axis only when it changes: without this a stick held since before the opening
    /// stays unknown until it moves.
    public func currentAxes(_ codes: [UInt16], deliver: (InputEvent) -> Void) {
        var any = false
        for code in codes where libevdev_has_event_code(device, UInt32(EV_ABS), UInt32(code)) != 0 {
            deliver(InputEvent(type: UInt16(EV_ABS), code: code, value: libevdev_get_event_value(device, UInt32(EV_ABS), UInt32(code))))
            any = true
        }
        if any { deliver(.synReport) }
    }

    /// Waits up to `timeoutMilliseconds` and hands every available event to `deliver`. On
    /// SYN_DROPPED it calls `onResync` and then delivers libevdev's resync events (the device's
    /// current state), which end with a SYN_REPORT. Throws when the device goes away.
    public func pump(timeoutMilliseconds: Int32, onResync: () -> Void, deliver: (InputEvent) -> Void) throws(InputError) {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, timeoutMilliseconds) > 0 else { return }
        var event = input_event()
        var flags = LIBEVDEV_READ_FLAG_NORMAL.rawValue
        while true {
            let rc = libevdev_next_event(device, flags, &event)
            if rc == -EAGAIN {
                if flags == LIBEVDEV_READ_FLAG_SYNC.rawValue { flags = LIBEVDEV_READ_FLAG_NORMAL.rawValue; continue }
                return
            }
            if rc < 0 { throw InputError("\(path): \(SystemErrorWords.text(-rc))") }
            if rc == LIBEVDEV_READ_STATUS_SYNC.rawValue && flags == LIBEVDEV_READ_FLAG_NORMAL.rawValue {
                onResync()  // this is the SYN_DROPPED itself; the state follows in sync mode
                flags = LIBEVDEV_READ_FLAG_SYNC.rawValue
                continue
            }
            deliver(InputEvent(seconds: Int64(event.time.tv_sec), microseconds: Int64(event.time.tv_usec),
                               type: event.type, code: event.code, value: event.value))
        }
    }

    deinit {
        libevdev_free(device)
        close(fd)
    }
}
