import Foundation
import Glibc

/// The writing end of a named pipe carrying input_event records (how the simulator stands in for
/// /dev/input/eventN). Events written while no reader has the FIFO open are dropped and counted,
/// as a button pressed on an unplugged gamepad would be: nothing stale waits in the pipe.
final class FifoWriter {
    let path: String
    private var fd: Int32 = -1
    private(set) var bytesDropped = 0
    private(set) var bytesWritten = 0
    /// A gamepad-unplug fault: the node is gone and nothing is written until `plug()`.
    private(set) var isUnplugged = false

    init(path: String) throws {
        self.path = path
        try makeNode()
        signal(SIGPIPE, SIG_IGN)  // a reader that goes away is an EPIPE to handle, not a process kill
    }

    private func makeNode() throws {
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFIFO else { throw SimulatorError("\(path) exists and is not a FIFO") }
        } else if mkfifo(path, 0o600) != 0 {
            throw SimulatorError("cannot create FIFO \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// As an unplugged /dev/input/eventN: the node disappears and the reader sees EOF (unlinked
    /// first, so that a reader reopening on EOF finds nothing rather than the old node).
    func unplug() {
        guard !isUnplugged else { return }
        isUnplugged = true
        unlink(path)
        if fd >= 0 { close(fd); fd = -1 }
    }

    /// The device is back at the same path; the write end opens once a reader has it open.
    func plug() throws {
        guard isUnplugged else { return }
        try makeNode()
        isUnplugged = false
    }

    deinit {
        if fd >= 0 { close(fd) }
        unlink(path)
    }

    /// Writes `bytes`; when that opens the FIFO (a reader has just opened it, or opened it again),
    /// `opening`'s bytes go first, as the state a reader reads from a device it opens.
    func write(_ bytes: [UInt8], opening: () -> [UInt8] = { [] }) {
        guard !bytes.isEmpty else { return }
        if isUnplugged { bytesDropped += bytes.count; return }
        var bytes = bytes
        if fd < 0 {
            // O_WRONLY|O_NONBLOCK fails with ENXIO while there is no reader.
            fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            if fd < 0 { bytesDropped += bytes.count; return }
            bytes = opening() + bytes
        }
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EPIPE { close(fd); fd = -1 }
            bytesDropped += bytes.count
            return
        }
        bytesWritten += n
        bytesDropped += bytes.count - n
    }
}
