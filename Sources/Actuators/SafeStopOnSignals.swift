import Platform
import CRealtime
import Glibc
import RTScheduler

/// SIGINT and SIGTERM put every actuator in its safe state before anything else happens, then
/// call `then` (the daemon exits there). The signal handler only writes the signal number to a
/// pipe (async-signal-safe); a watcher thread reads it and runs the safe stop, where locking and
/// logging are allowed. (libdispatch signal sources were not used: on Linux they miss a signal
/// delivered to a thread that has not blocked it.)
public final class SafeStopOnSignals: Sendable {
    private let signals: [Int32]
    private let watcher: RealtimeThread?

    public init(actuators: ActuatorSet, signals: [Int32] = [SIGINT, SIGTERM],
                then: @escaping @Sendable (Int32) -> Void) {
        self.signals = signals
        let fd = signals.withUnsafeBufferPointer { rt_signal_pipe_install($0.baseAddress, Int32($0.count)) }
        guard fd >= 0 else {
            watcher = nil
            return
        }
        watcher = try? RealtimeThread(name: "robotd-signals") {
            var byte: UInt8 = 0
            while true {
                let n = read(fd, &byte, 1)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }  // write end closed: cancelled
                actuators.safeStop(reason: "signal \(byte)")
                then(Int32(byte))
            }
            close(fd)
        }
    }

    /// Restores the default signal actions and stops the watcher.
    public func cancel() {
        signals.withUnsafeBufferPointer { rt_signal_pipe_remove($0.baseAddress, Int32($0.count)) }
        watcher?.join()
    }
}
