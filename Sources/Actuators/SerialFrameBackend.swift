import Codecs
import Glibc
import SafetyGuard
import Synchronization
import Transports

/// Where a serial back end's bytes go: a serial port, a pseudo-terminal, a pipe.
public protocol ByteWriter: AnyObject, Sendable {
    /// Writes all of `bytes` or throws.
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// False once the link is known to be down.
    var isConnected: Bool { get }
}

extension ByteWriter {
    public var isConnected: Bool { true }
}

/// Writes to a file descriptor (a serial port opened elsewhere, a pty, a pipe). EPIPE, EIO and
/// EBADF mean the link is gone.
public final class FileDescriptorWriter: ByteWriter {
    public let fd: Int32
    private let up = Atomic<Bool>(true)
    public init(fd: Int32) { self.fd = fd }
    public var isConnected: Bool { up.load(ordering: .relaxed) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                let code = errno
                if code == EINTR { continue }
                if code == EPIPE || code == EIO || code == EBADF { up.store(false, ordering: .relaxed) }
                throw ActuatorError(code == EPIPE || code == EIO ? .disconnected : .writeFailed, backend: "fd \(fd)", errno: code)
            }
            offset += n
        }
    }
}

/// Writes to an open serial port of Transports (libserialport for real ports, termios for ptys),
/// so a motor driver can share the port its sensor frames arrive on. A port that reports the
/// device gone (EIO, ENXIO, EPIPE) marks the link down.
public final class SerialPortWriter: ByteWriter {
    public let port: any SerialPort
    private let up = Atomic<Bool>(true)
    public init(port: any SerialPort) { self.port = port }
    public var isConnected: Bool { up.load(ordering: .relaxed) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        do {
            try port.write(bytes)
        } catch {
            if error.code == .disconnected { up.store(false, ordering: .relaxed) }
            throw ActuatorError(error.code == .disconnected ? .disconnected : .writeFailed, backend: port.path,
                                errno: error.errno, detail: error.detail)
        }
    }
}

/// Motor drivers on a serial link speaking robotd's framed protocol (docs/serial-protocol.md):
/// each approved command becomes one motor-command frame. Real-time safe: encoding uses a
/// preallocated buffer; the write is one syscall on a non-blocking or fast descriptor.
public final class SerialFrameBackend: ActuatorBackend {
    /// How a guard channel maps onto the wire.
    public struct Mapping: Sendable, Equatable {
        public var channel: ChannelID
        public var motor: UInt8
        public var mode: MotorCommandMessage.Mode
        public var safeValue: Float
        public init(channel: ChannelID, motor: UInt8, mode: MotorCommandMessage.Mode, safeValue: Float = 0) {
            self.channel = channel
            self.motor = motor
            self.mode = mode
            self.safeValue = safeValue
        }
    }

    public let name: String
    public let mappings: [Mapping]
    public var channels: [ChannelID] { mappings.map(\.channel) }
    private let writer: any ByteWriter
    private let byChannel: [Int: Int]
    private struct Buffer: ~Copyable {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: Frame.maxWireCount, alignment: 1)
        var sequence: UInt8 = 0
        deinit { bytes.deallocate() }
    }
    private let buffer = Mutex(Buffer())

    public init(name: String, mappings: [Mapping], writer: any ByteWriter) {
        self.name = name
        self.mappings = mappings
        self.writer = writer
        var byChannel: [Int: Int] = [:]
        for (i, m) in mappings.enumerated() { byChannel[m.channel.index] = i }
        self.byChannel = byChannel
    }

    /// The writer knows whether its link is up (and comes back: a re-plugged cable).
    public var isConnected: Bool { writer.isConnected }

    public func write(_ command: ApprovedCommand) throws {
        guard let i = byChannel[command.channel.index] else { throw ActuatorError(.unknownChannel, backend: name) }
        let value: Float = switch command.value {
        case .continuous(let v): Float(v)
        case .discrete(let s): Float(s)
        }
        try send(MotorCommandMessage(channel: mappings[i].motor, mode: mappings[i].mode,
                                     deenergize: command.deenergize, value: value))
    }

    public func applySafeState() throws {
        for m in mappings {
            try send(MotorCommandMessage(channel: m.motor, mode: m.mode, deenergize: true, value: m.safeValue))
        }
    }

    private func send(_ message: MotorCommandMessage) throws {
        try buffer.withLock { buffer in
            buffer.sequence &+= 1
            guard let n = message.encode(sequence: buffer.sequence, into: buffer.bytes) else {
                throw ActuatorError(.encodingFailed, backend: name)
            }
            do {
                try writer.write(UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<n]))
            } catch var error as ActuatorError {
                error.backend = name
                throw error
            }
        }
    }
}
