import CRealtime
import Glibc
import Platform
import Synchronization

// Both helpers below use CRealtime's signal self-pipe: the handler only writes the signal's
// number to a pipe (async-signal-safe) and Swift code reads it on an ordinary thread. The pipe is
// process-wide, so one of them (or `SafeStopOnSignals`) is installed at a time.

/// Waits for SIGINT/SIGTERM (through the self-pipe) or a time-out: for a command's own loop.
public struct SignalWait {
    let fd: Int32
    public init() { fd = [SIGINT, SIGTERM].withUnsafeBufferPointer { rt_signal_pipe_install($0.baseAddress, 2) } }
    /// True if a signal arrived within `seconds`.
    public func wait(seconds: Double) -> Bool {
        guard fd >= 0 else { usleep(UInt32(seconds * 1e6)); return false }
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&poller, 1, Int32(seconds * 1000)) > 0
    }
    /// Restores the default actions (and closes the pipe).
    public func remove() {
        [SIGINT, SIGTERM].withUnsafeBufferPointer { rt_signal_pipe_remove($0.baseAddress, 2) }
        if fd >= 0 { close(fd) }
    }
}

/// Calls `then` on a watcher thread for each SIGINT/SIGTERM until cancelled: for a command that
/// waits on something else (a semaphore) and must end cleanly, with its summary, on Ctrl-C.
public final class SignalWatch: Sendable {
    private let watcher: RealtimeThread?
    private let last = LastSignal()

    /// Shared with the watcher thread (an Atomic cannot be captured by itself).
    private final class LastSignal: Sendable {
        let value = Atomic<Int32>(0)
    }

    /// Created here, in a nonisolated initialiser, so the thread's body never inherits an
    /// actor's isolation (which traps when it runs on another thread).
    public nonisolated init(then: @escaping @Sendable (Int32) -> Void) {
        let fd = [SIGINT, SIGTERM].withUnsafeBufferPointer { rt_signal_pipe_install($0.baseAddress, 2) }
        guard fd >= 0 else {
            watcher = nil
            return
        }
        let last = self.last
        watcher = try? RealtimeThread(name: "robotd-signals") {
            var byte: UInt8 = 0
            while true {
                let n = read(fd, &byte, 1)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }  // write end closed: cancelled
                last.value.store(Int32(byte), ordering: .relaxed)
                then(Int32(byte))
            }
            close(fd)
        }
    }

    /// The last signal received (0: none).
    public var received: Int32 { last.value.load(ordering: .relaxed) }

    /// Restores the default actions and stops the watcher.
    public func cancel() {
        [SIGINT, SIGTERM].withUnsafeBufferPointer { rt_signal_pipe_remove($0.baseAddress, 2) }
        watcher?.join()
    }
}
