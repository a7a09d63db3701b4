import CTransport
import Glibc

/// A serial line opened with open(2) and configured with termios: used for pseudo-terminals (the
/// simulator), which libserialport cannot open, and as the fallback for any tty it refuses.
public final class TermiosSerialPort: SerialPort {
    public let path: String
    public var backend: String { "termios" }
    private let io: DescriptorIO

    public init(path: String, settings: SerialSettings) throws(SerialError) {
        try settings.validate()
        let fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw SerialError(errno == ENOENT ? .notFound : .openFailed, path: path, errno: errno)
        }
        let parity: CChar = switch settings.parity {
        case .none: CChar(UInt8(ascii: "N"))
        case .even: CChar(UInt8(ascii: "E"))
        case .odd: CChar(UInt8(ascii: "O"))
        }
        let rc = tr_configure_raw(fd, UInt32(settings.baud), Int32(settings.dataBits), parity, Int32(settings.stopBits),
                                  settings.flowControl == .rtscts ? 1 : 0)
        guard rc == 0 else {
            Glibc.close(fd)
            // ENOTTY: not a tty at all, which the error's reason says in words.
            throw SerialError(.configureFailed, path: path, errno: rc, detail: rc == ENOTTY ? "" : "tcsetattr")
        }
        self.path = path
        io = DescriptorIO(fd: fd, path: path)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, timeoutMilliseconds: Int32) throws(SerialError) -> Int {
        try io.read(into: buffer, timeoutMilliseconds: timeoutMilliseconds)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(SerialError) { try io.write(bytes) }
    public var fileDescriptor: Int32 { io.fd }

    public func close() { Glibc.close(io.fd) }
}
