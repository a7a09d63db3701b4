import CTransport
import Foundation
import Glibc

/// The device end of a pseudo-terminal: what a USB-serial adapter would be on a robot. robotd
/// opens the slave path (or a stable symlink to it) as if it were /dev/ttyUSB0.
final class PtyDevice {
    let master: Int32
    let slavePath: String
    let linkPath: String?
    private let hangup = UnsafeMutablePointer<pollfd>.allocate(capacity: 1)

    init(linkPath: String?) throws {
        var name = [CChar](repeating: 0, count: 128)
        let fd = tr_open_pty(&name, name.count)
        guard fd >= 0 else { throw SimulatorError("cannot open a pseudo-terminal: \(String(cString: strerror(errno)))") }
        master = fd
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        slavePath = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // A master whose slave was never opened does not report POLLHUP, and would queue stale
        // frames for the first host. One open and close puts it in the hung-up state until a host comes.
        let probe = open(slavePath, O_RDWR | O_NOCTTY | O_CLOEXEC)
        if probe >= 0 { close(probe) }
        self.linkPath = linkPath
        if let linkPath {
            unlink(linkPath)
            guard symlink(slavePath, linkPath) == 0 else {
                let message = String(cString: strerror(errno))
                close(fd)
                throw SimulatorError("cannot link \(linkPath) → \(slavePath): \(message)")
            }
        }
    }

    deinit {
        if let linkPath { unlink(linkPath) }
        close(master)
        hangup.deallocate()
    }

    /// Whether a host has the slave side open (the master reports POLLHUP while nobody does).
    var hostAttached: Bool {
        hangup.pointee = pollfd(fd: master, events: Int16(POLLOUT), revents: 0)
        return poll(hangup, 1, 0) >= 0 && hangup.pointee.revents & Int16(POLLHUP) == 0
    }

    /// Whatever the host wrote, without blocking.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let n = Glibc.read(master, buffer.baseAddress, buffer.count)
        return max(n, 0)
    }

    /// Writes what fits; returns the bytes written (a full tty buffer drops the rest, as a UART
    /// transmitting to nobody would).
    func write(_ bytes: UnsafeRawBufferPointer) -> Int {
        let n = Glibc.write(master, bytes.baseAddress, bytes.count)
        return max(n, 0)
    }
}

public struct SimulatorError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
