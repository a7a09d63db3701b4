import CRealtime
import Glibc
import Platform
import Synchronization

/// One input device read on its own thread, whatever it is: a /dev/input character device through
/// libevdev (with its SYN_DROPPED resync), or a FIFO / recorded file of raw input_event records
/// (the simulator, replays). Either way the same events come out, one at a time, with their
/// CLOCK_MONOTONIC arrival, so everything above is the same code for hardware and simulation.
/// What `InputDeviceReader` reads a character device through (libevdev's `EvdevDevice`).
public protocol InputEventPump: Sendable {
    var path: String { get }
    var name: String { get }
    /// Waits up to the timeout and delivers what is there; throws when the device is gone.
    func pump(timeoutMilliseconds: Int32, onResync: () -> Void, deliver: (InputEvent) -> Void) throws(InputError)
    /// Delivers the current position of each of these absolute axes (codes) the device has, then
    /// a SYN_REPORT (nothing if it has none): read once, before the first `pump`.
    func currentAxes(_ codes: [UInt16], deliver: (InputEvent) -> Void)
    /// Whether each of these keys (codes) the device has is down now; a key left out is unknown
    /// (the device lacks it, or its state cannot be read). Read once, before the first `pump`.
    func currentKeys(_ codes: [UInt16]) -> [UInt16: Bool]
}

extension EvdevDevice: InputEventPump {}

public final class InputDeviceReader: Sendable {
    public enum Notice: Sendable, Equatable {
        /// A libevdev device opened (its name), or a stream.
        case opened(String)
        /// libevdev reported SYN_DROPPED and resynchronised: events were lost.
        case resynchronised
        /// The device went away (ENODEV: unplugged) or the file ended. The reader has stopped.
        case ended(String)
        /// A FIFO's writer went away; the reader waits for the next one.
        case writerGone
        /// A complete frame (SYN_REPORT) arrived again after `writerGone`.
        case resumed
        /// The levels of the asked keys the device reported right after `.opened` (EVIOCGKEY), by
        /// code: true while down. A key left out is unknown; a stream reports none (its writer
        /// sends events only), and neither does a device whose key state cannot be read.
        case keysAtOpen([UInt16: Bool])
    }

    public let path: String
    private let stopReader: @Sendable () -> Void
    private let partial: @Sendable () -> Int
    private let fifo: @Sendable () -> Bool

    private init(path: String, stop: @escaping @Sendable () -> Void, partial: @escaping @Sendable () -> Int,
                 fifo: @escaping @Sendable () -> Bool) {
        self.path = path
        stopReader = stop
        self.partial = partial
        self.fifo = fifo
    }

    /// Whether the reader thread runs under SCHED_FIFO.
    public var runsAtFIFO: Bool { fifo() }

    /// `axes`: the mapped absolute axes (libevdev names) whose current positions a character
    /// device reports right after `.opened`, as events; a stream's writer sends its own. `keys`:
    /// the keys (libevdev names) whose levels a character device reports then (`.keysAtOpen`).
    public convenience init(path: String, grab: Bool = false, axes: [String] = [], keys: [String] = [], fifoPriority: Int? = nil,
                            onNotice: @escaping @Sendable (Notice, Int64) -> Void,
                            onEvent: @escaping @Sendable (InputEvent, Int64) -> Void) throws {
        var info = stat()
        if stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFCHR {
            let codes = axes.compactMap { InputEvent.code(named: $0) }.filter { $0.type == 3 }.map(\.code)
            let keyCodes = keys.compactMap { InputEvent.code(named: $0) }.filter { $0.type == 1 }.map(\.code)
            try self.init(device: try EvdevDevice(path: path, grab: grab), axes: codes, keys: keyCodes, fifoPriority: fifoPriority,
                          onNotice: onNotice, onEvent: onEvent)
            return
        }
        let decoder = Mutex(InputEventStreamDecoder())  // touched by the reader thread; the lock orders reads of `pendingBytes`
        // Before the reader thread starts: its first notice (a writer gone) must come after this one.
        onNotice(.opened("input_event stream"), rt_monotonic_ns())
        let lost = LinkLoss()
        let reader = try StreamReader(path: path, fifoPriority: fifoPriority, onEnd: { reason in onNotice(.ended(reason), rt_monotonic_ns()) },
                                      onLink: { up in
            // Back is judged on a complete frame below, not on the first byte.
            guard !up else { return }
            // A record cut off by the writer that left must not misalign the next writer's.
            decoder.withLock { $0 = InputEventStreamDecoder() }
            lost.flag.store(true, ordering: .relaxed)
            onNotice(.writerGone, rt_monotonic_ns())
        }) { bytes, arrival in
            decoder.withLock {
                $0.feed(bytes) { event in
                    if event.type == 0 && event.code == 0 && lost.flag.exchange(false, ordering: .relaxed) {
                        onNotice(.resumed, arrival)
                    }
                    onEvent(event, arrival)
                }
            }
        }
        self.init(path: path, stop: { reader.stop() }, partial: { decoder.withLock { $0.pendingBytes } }, fifo: { reader.runsAtFIFO })
    }

    /// A device read through `pump` on its own thread: libevdev for /dev/input, or a stand-in in
    /// tests (there is no /dev/input on a CI machine), so the unplug path is the same code. The
    /// `axes` (codes) the device has are reported first, after `.opened`: a stick held deflected
    /// since before the opening is known at once, not at its first movement. Then the levels of
    /// the `keys` (codes) it could read, as `.keysAtOpen`: a deadman held since before the
    /// opening is known held (not a press: no edge), one up known released.
    public convenience init(device: any InputEventPump, axes: [UInt16] = [], keys: [UInt16] = [], fifoPriority: Int? = nil,
                            onNotice: @escaping @Sendable (Notice, Int64) -> Void,
                            onEvent: @escaping @Sendable (InputEvent, Int64) -> Void) throws {
        onNotice(.opened(device.name), rt_monotonic_ns())
        let thread = try StoppableThread(name: "evdev-reader", fifoPriority: fifoPriority) { stop in
            if !axes.isEmpty { device.currentAxes(axes) { event in onEvent(event, rt_monotonic_ns()) } }
            // On this thread, before the first event is pumped: a key event queued since the
            // opening comes after these levels and wins, in the order the kernel saw them.
            if !keys.isEmpty {
                let levels = device.currentKeys(keys)
                if !levels.isEmpty { onNotice(.keysAtOpen(levels), rt_monotonic_ns()) }
            }
            while !stop.isSet {
                do {
                    try device.pump(timeoutMilliseconds: 50, onResync: { onNotice(.resynchronised, rt_monotonic_ns()) }) { event in
                        onEvent(event, rt_monotonic_ns())
                    }
                } catch {
                    onNotice(.ended("\(error)"), rt_monotonic_ns())
                    return
                }
            }
        }
        self.init(path: device.path, stop: { thread.stop() }, partial: { 0 }, fifo: { thread.waitForFIFO() })
    }

    /// Bytes of an incomplete record waiting for the rest (streams only).
    public var pendingBytes: Int { partial() }

    public func stop() { stopReader() }
}

/// Whether a stream's writer went away and no complete frame has come since.
private final class LinkLoss: Sendable {
    let flag = Atomic<Bool>(false)
}
