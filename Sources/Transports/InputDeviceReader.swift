import CRealtime
import Glibc
import Platform
import Synchronization

/// One input device read on its own thread, whatever it is: a /dev/input character device through
/// libevdev (with its SYN_DROPPED resync), or a FIFO / recorded file of raw input_event records
/// (the simulator, replays). Either way the same events come out, one at a time, with their
/// CLOCK_MONOTONIC arrival, so everything above is the same code for hardware and simulation.
public final class InputDeviceReader: Sendable {
    public enum Notice: Sendable, Equatable {
        /// A libevdev device opened (its name), or a stream.
        case opened(String)
        /// libevdev reported SYN_DROPPED and resynchronised: events were lost.
        case resynchronised
        /// The device went away or the file ended.
        case ended(String)
    }

    public let path: String
    private let stopReader: @Sendable () -> Void
    private let partial: @Sendable () -> Int

    public init(path: String, grab: Bool = false, onNotice: @escaping @Sendable (Notice, Int64) -> Void,
                onEvent: @escaping @Sendable (InputEvent, Int64) -> Void) throws {
        self.path = path
        var info = stat()
        if stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFCHR {
            let device = try EvdevDevice(path: path, grab: grab)
            onNotice(.opened(device.name), rt_monotonic_ns())
            let thread = try StoppableThread(name: "evdev-reader") { stop in
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
            stopReader = { thread.stop() }
            partial = { 0 }
            return
        }
        let decoder = Mutex(InputEventStreamDecoder())  // touched by the reader thread; the lock orders reads of `pendingBytes`
        let reader = try StreamReader(path: path, onEnd: { reason in onNotice(.ended(reason), rt_monotonic_ns()) }) { bytes, arrival in
            decoder.withLock { $0.feed(bytes) { onEvent($0, arrival) } }
        }
        onNotice(.opened("input_event stream"), rt_monotonic_ns())
        stopReader = { reader.stop() }
        partial = { decoder.withLock { $0.pendingBytes } }
    }

    /// Bytes of an incomplete record waiting for the rest (streams only).
    public var pendingBytes: Int { partial() }

    public func stop() { stopReader() }
}
