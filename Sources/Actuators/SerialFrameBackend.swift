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

/// Writes to a serial port of Transports (libserialport for real ports, termios for ptys), so a
/// motor driver can share the port its sensor frames arrive on. A port that reports the device
/// gone (EIO, ENXIO, EPIPE) is closed and the link marked down; one opened from an endpoint can be
/// reopened when the device is back (`reconnect`).
public final class SerialPortWriter: ByteWriter {
    private let port: Mutex<(any SerialPort)?>
    private let opener: (@Sendable () throws -> any SerialPort)?
    public let name: String

    /// A port opened elsewhere; it cannot be reopened.
    public init(port: any SerialPort) {
        self.port = Mutex(port)
        opener = nil
        name = port.path
    }

    /// Opens `endpoint` now (a missing device is an error here, at start-up).
    public init(endpoint: SerialEndpoint, settings: SerialSettings) throws {
        let opener: @Sendable () throws -> any SerialPort = { try SerialPortOpener.open(endpoint, settings: settings) }
        port = Mutex(try opener())
        self.opener = opener
        name = endpoint.description
    }

    public var isConnected: Bool { port.withLock { $0 != nil } }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try port.withLock { current in
            guard let open = current else { throw ActuatorError(.disconnected, backend: name) }
            do {
                try open.write(bytes)
            } catch let error as SerialError {
                if error.code == .disconnected {
                    open.close()
                    current = nil
                }
                throw ActuatorError(error.code == .disconnected ? .disconnected : .writeFailed, backend: name,
                                    errno: error.errno, detail: error.detail)
            }
        }
    }

    /// Closes the current port (if any) and opens the endpoint again.
    public func reconnect() throws {
        guard let opener else { throw ActuatorError(.disconnected, backend: name, detail: "opened elsewhere: cannot reopen") }
        let fresh = try opener()
        port.withLock { current in
            current?.close()
            current = fresh
        }
    }

    public func close() {
        port.withLock { current in
            current?.close()
            current = nil
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
