import CRealtime
import Glibc
import Platform
import Synchronization

/// Reads a FIFO or a file on its own thread and hands over bytes with their CLOCK_MONOTONIC
/// arrival (ns). A FIFO whose writer went away is reopened (the simulator may restart); a regular
/// file ends at EOF (`onEnd`). Used for recorded sessions and the simulator's input_event streams.
public final class StreamReader: Sendable {
    public final class State: Sendable {
        public let bytesRead = Atomic<UInt64>(0)
        public let reopened = Atomic<UInt64>(0)
    }

    public let path: String
    public let state = State()
    private let worker: StoppableThread

    /// Whether the reader thread runs under SCHED_FIFO (waits briefly for it to start).
    public var runsAtFIFO: Bool { worker.waitForFIFO() }

    /// `onLink(false)`: a FIFO's writer went away (or the FIFO was replaced); `onLink(true)`:
    /// bytes flow again. A reader that supervises an e-stop device treats the first as a loss.
    public init(path: String, fifoPriority: Int? = nil, onEnd: @escaping @Sendable (String) -> Void = { _ in },
                onLink: @escaping @Sendable (Bool) -> Void = { _ in },
                onBytes: @escaping @Sendable (UnsafeRawBufferPointer, Int64) -> Void) throws {
        self.path = path
        let state = self.state
        worker = try StoppableThread(name: "stream-reader", fifoPriority: fifoPriority) { stop in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
            defer { buffer.deallocate() }
            var info = stat()
            let isFIFO = stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO
            var fd: Int32 = -1
            var linkLost = false
            while !stop.isSet {
                if fd < 0 {
                    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
                    if fd < 0 {
                        // A FIFO whose writer was restarted may be gone for a moment: wait for it.
                        if isFIFO && errno == ENOENT { stop.sleep(milliseconds: 50); continue }
                        onEnd("\(path): \(SystemErrorWords.text(errno))")
                        return
                    }
                }
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&poller, 1, 50)
                if ready <= 0 {
                    // A quiet FIFO may have been replaced (the simulator restarted and made a new
                    // one at the same path): then this descriptor will never see a writer again.
                    if isFIFO && Self.replaced(fd, path: path) {
                        close(fd)
                        fd = -1
                        state.reopened.add(1, ordering: .relaxed)
                        if !linkLost { linkLost = true; onLink(false) }
                    }
                    continue
                }
                let n = read(fd, buffer.baseAddress, buffer.count)
                if n > 0 {
                    if linkLost { linkLost = false; onLink(true) }
                    state.bytesRead.add(UInt64(n), ordering: .relaxed)
                    onBytes(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), rt_monotonic_ns())
                    continue
                }
                if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
                // EOF: for a FIFO the writer left — wait for the next one; a file is done.
                close(fd)
                fd = -1
                if !isFIFO { onEnd("end of file"); return }
                state.reopened.add(1, ordering: .relaxed)
                if !linkLost { linkLost = true; onLink(false) }
                stop.sleep(milliseconds: 20)
            }
            if fd >= 0 { close(fd) }
        }
    }

    public func stop() { worker.stop() }

    /// Whether `path` no longer names the file open on `fd`.
    private static func replaced(_ fd: Int32, path: String) -> Bool {
        var open = stat(), named = stat()
        guard fstat(fd, &open) == 0 else { return true }
        guard stat(path, &named) == 0 else { return false }  // gone for now: keep waiting on this one
        return open.st_ino != named.st_ino || open.st_dev != named.st_dev
    }

}
