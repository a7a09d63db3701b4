import CRealtime
import Glibc

/// An open serial line. Two implementations, one per file: `LibSerialPort` (real ports, through
/// libserialport) and `TermiosSerialPort` (pseudo-terminals, which libserialport cannot open).
/// Both end in a non-blocking file descriptor, so reading and writing is one shared piece of code.
public protocol SerialPort: AnyObject, Sendable {
    var path: String { get }
    /// "libserialport" or "termios": which path opened it.
    var backend: String { get }
    /// The open descriptor (non-blocking), for callers that write with their own bounded wait
    /// (the actuator writer thread) or in an emergency (one non-blocking write(2)).
    var fileDescriptor: Int32 { get }
    /// Waits up to `timeoutMilliseconds` for bytes; returns how many were read (0: time-out).
    /// Throws `.disconnected` on EOF, EIO or a hang-up.
    func read(into buffer: UnsafeMutableRawBufferPointer, timeoutMilliseconds: Int32) throws(SerialError) -> Int
    func write(_ bytes: UnsafeRawBufferPointer) throws(SerialError)
    func close()
}

/// The poll/read/write shared by both implementations.
struct DescriptorIO {
    let fd: Int32
    let path: String

    func read(into buffer: UnsafeMutableRawBufferPointer, timeoutMilliseconds: Int32) throws(SerialError) -> Int {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, timeoutMilliseconds)
        if ready < 0 {
            if errno == EINTR { return 0 }
            throw SerialError(.ioFailed, path: path, errno: errno)
        }
        if ready == 0 { return 0 }
        if poller.revents & Int16(POLLIN) == 0 && poller.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 {
            throw SerialError(.disconnected, path: path, detail: "hang-up")
        }
        let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
        if n > 0 { return n }
        if n == 0 { throw SerialError(.disconnected, path: path, detail: "end of file") }
        let code = errno
        if code == EAGAIN || code == EINTR { return 0 }
        throw SerialError(code == EIO || code == ENXIO || code == ENODEV ? .disconnected : .ioFailed, path: path, errno: code)
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(SerialError) {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n > 0 { offset += n; continue }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN {  // the line is slower than us: wait for room, briefly
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&poller, 1, 100) <= 0 { throw SerialError(.ioFailed, path: path, errno: code, detail: "write timed out") }
                continue
            }
            throw SerialError(code == EIO || code == ENXIO || code == EPIPE ? .disconnected : .ioFailed, path: path, errno: code)
        }
    }
}
