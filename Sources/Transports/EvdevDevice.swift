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

    /// The current position of each of these absolute axes the device has (EVIOCGABS, read now),
    /// then a SYN_REPORT; nothing if it has none of them. The kernel reports an axis only when it
    /// changes: without this a stick held since before the opening stays unknown until it moves.
    /// An axis whose record cannot be read stays unknown.
    public func currentAxes(_ codes: [UInt16], deliver: (InputEvent) -> Void) {
        var any = false
        for code in codes where libevdev_has_event_code(device, UInt32(EV_ABS), UInt32(code)) != 0 {
            guard let info = try? EvdevAxisInfo.read(fd: fd, code: code) else { continue }
            deliver(info.event(code: code))
            any = true
        }
        if any { deliver(.synReport) }
    }

    /// Whether each of these keys the device has is down now (EVIOCGKEY), by code. A key the
    /// device lacks is left out, and all of them when the ioctl fails: unknown, never released.
    public func currentKeys(_ codes: [UInt16]) -> [UInt16: Bool] {
        guard !codes.isEmpty, let bitmap = try? EvdevKeyBitmap.read(fd: fd) else { return [:] }
        var levels: [UInt16: Bool] = [:]
        for code in codes where libevdev_has_event_code(device, UInt32(EV_KEY), UInt32(code)) != 0 {
            levels[code] = bitmap.isDown(code)
        }
        return levels
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
