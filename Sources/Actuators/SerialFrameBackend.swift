import Codecs
import Glibc
import SafetyGuard
import Synchronization
import Transports

/// Where a serial back end's bytes go: a serial port, a pseudo-terminal, a pipe.
public protocol ByteWriter: AnyObject, Sendable {
    /// Writes all of `bytes` or throws. May wait (bounded) for the device: called on a writer thread.
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// False once the link is known to be down. Real-time safe.
    var isConnected: Bool { get }
    /// One non-blocking write(2) from any thread, taking no lock (a descriptor read from an
    /// atomic); true when all of `bytes` went out. Default: not supported (false).
    func emergencyWrite(_ bytes: UnsafeRawBufferPointer) -> Bool
    /// The dispatch thread's attempt (direct writes): at most one write(2) on a non-blocking
    /// descriptor, no lock waited for, no allocation. `.nothing` whenever that is not possible
    /// (a lock busy, a blocking descriptor, a fragment to resynchronise first, the device full, an
    /// error the writer thread will meet again and report). Default: not supported (`.nothing`).
    func writeOnce(_ bytes: UnsafeRawBufferPointer) -> SingleWrite
    /// A frame was left partly written and will not be finished: the next write starts with a
    /// 0x00 delimiter, so the receiver drops the fragment. Default: nothing (no partial writes).
    func dropFragment()
}

extension ByteWriter {
    public var isConnected: Bool { true }
    public func emergencyWrite(_ bytes: UnsafeRawBufferPointer) -> Bool { false }
    public func writeOnce(_ bytes: UnsafeRawBufferPointer) -> SingleWrite { .nothing }
    public func dropFragment() {}
}

/// What one `ByteWriter.writeOnce` did.
public enum SingleWrite: Sendable, Equatable {
    case all
    case nothing
    /// This many bytes (fewer than asked, more than none) went out.
    case partial(Int)
}

/// A non-blocking descriptor written with a bounded wait: on EAGAIN the caller (a writer thread)
/// polls for writability up to `stallTimeout`; a device that still takes nothing is a link fault
/// (`.stalled`). A frame left half written is counted, and the next write starts with a 0x00
/// delimiter so that the receiver drops the fragment (CRC) instead of gluing it to the next frame.
public final class DescriptorLink: Sendable {
    private let descriptor: Atomic<Int32>
    public let stallTimeout: Duration
    private let up = Atomic<Bool>(true)
    private let resync = Atomic<Bool>(false)
    /// Writes that hit a full device (EAGAIN) and had to wait.
    public let waits = Atomic<UInt64>(0)
    /// Stall time-outs (link faults).
    public let stalls = Atomic<UInt64>(0)
    /// Frames that left only partly (a stall or an error mid-frame); each is followed by a 0x00.
    public let partialFrames = Atomic<UInt64>(0)
    /// Emergency writes that the device took only partly or not at all.
    public let emergencyShortWrites = Atomic<UInt64>(0)
    /// `writeOnce` (the dispatch thread's direct writes) that found the device full (EAGAIN) and
    /// that it took only partly.
    public let onceWouldBlock = Atomic<UInt64>(0)
    public let oncePartial = Atomic<UInt64>(0)
    /// The descriptor is known to be O_NONBLOCK (checked when it was set): only then may
    /// `writeOnce` write from the dispatch thread.
    private let nonBlocking: Atomic<Bool>

    public init(fd: Int32, stallTimeout: Duration = .milliseconds(50)) {
        descriptor = Atomic(fd)
        self.stallTimeout = stallTimeout
        nonBlocking = Atomic(Self.makeNonBlocking(fd))
    }

    /// True when the descriptor is O_NONBLOCK afterwards.
    @discardableResult
    static func makeNonBlocking(_ fd: Int32) -> Bool {
        guard fd >= 0 else { return false }
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { return false }
        if flags & O_NONBLOCK != 0 { return true }
        return fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 && fcntl(fd, F_GETFL) & O_NONBLOCK != 0
    }

    public var fd: Int32 { descriptor.load(ordering: .acquiring) }
    public var isConnected: Bool { up.load(ordering: .relaxed) && fd >= 0 }

    /// A new descriptor (a reopened port): non-blocking, link up, no fragment pending.
    public func replace(fd: Int32) {
        nonBlocking.store(Self.makeNonBlocking(fd), ordering: .relaxed)
        resync.store(false, ordering: .relaxed)
        descriptor.store(fd, ordering: .releasing)
        up.store(fd >= 0, ordering: .relaxed)
    }

    /// Marks the link down and returns the old descriptor (the caller closes it).
    public func detach() -> Int32 {
        up.store(false, ordering: .relaxed)
        return descriptor.exchange(-1, ordering: .acquiringAndReleasing)
    }

    public func write(_ bytes: UnsafeRawBufferPointer, name: String) throws {
        let fd = self.fd
        guard fd >= 0 else { throw ActuatorError(.disconnected, backend: name) }
        if resync.load(ordering: .relaxed) {
            var zero: UInt8 = 0
            try withUnsafeBytes(of: &zero) { try writeAll(fd, $0, name: name, countsAsFrame: false) }
            resync.store(false, ordering: .relaxed)
        }
        try writeAll(fd, bytes, name: name, countsAsFrame: true)
    }

    private func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, name: String, countsAsFrame: Bool) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var offset = 0
        var deadline: Int64 = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, base + offset, bytes.count - offset)
            if n >= 0 { offset += n; continue }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK {
                waits.add(1, ordering: .relaxed)
                let now = Self.monotonicMilliseconds()
                if deadline == 0 { deadline = now + Int64(stallTimeout / .milliseconds(1)) }
                let left = deadline - now
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if left <= 0 || poll(&poller, 1, Int32(left)) == 0 {
                    stalls.add(1, ordering: .relaxed)
                    throw partial(offset, countsAsFrame, ActuatorError(.stalled, backend: name, errno: code,
                                             detail: "device took nothing for \(stallTimeout); \(offset) of \(bytes.count) bytes sent"))
                }
                if poller.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 && poller.revents & Int16(POLLOUT) == 0 {
                    up.store(false, ordering: .relaxed)
                    throw partial(offset, countsAsFrame, ActuatorError(.disconnected, backend: name, detail: "hang-up"))
                }
                continue
            }
            let gone = code == EPIPE || code == EIO || code == ENXIO || code == ENODEV
            if gone || code == EBADF { up.store(false, ordering: .relaxed) }
            throw partial(offset, countsAsFrame, ActuatorError(gone ? .disconnected : .writeFailed, backend: name, errno: code))
        }
    }

    /// A failure mid-frame leaves a fragment on the wire: count it and resynchronise the receiver.
    /// (A method, not a local function: a local function capturing `offset` costs an allocation.)
    private func partial(_ offset: Int, _ countsAsFrame: Bool, _ error: ActuatorError) -> ActuatorError {
        if offset > 0 && countsAsFrame {
            partialFrames.add(1, ordering: .relaxed)
            resync.store(true, ordering: .relaxed)
        }
        return error
    }

    /// One non-blocking write(2) from any thread; no lock, no wait. Returns whether all went out.
    public func emergencyWrite(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let fd = self.fd
        guard fd >= 0, let base = bytes.baseAddress else { return false }
        let n = Glibc.write(fd, base, bytes.count)
        if n == bytes.count { return true }
        emergencyShortWrites.add(1, ordering: .relaxed)
        if n > 0 { resync.store(true, ordering: .relaxed) }
        return false
    }

    /// One write(2), never a wait (see `ByteWriter.writeOnce`). A fragment left by an earlier
    /// failure needs its 0x00 first: left to the writer thread (`.nothing`). An error is not acted
    /// on here either: the writer thread meets it again, marks the link and reports the fault.
    public func writeOnce(_ bytes: UnsafeRawBufferPointer) -> SingleWrite {
        let fd = self.fd
        guard fd >= 0, up.load(ordering: .relaxed), nonBlocking.load(ordering: .relaxed), !resync.load(ordering: .relaxed),
              let base = bytes.baseAddress, bytes.count > 0 else { return .nothing }
        let n = Glibc.write(fd, base, bytes.count)
        if n == bytes.count { return .all }
        if n > 0 {
            oncePartial.add(1, ordering: .relaxed)
            return .partial(n)
        }
        if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { onceWouldBlock.add(1, ordering: .relaxed) }
        return .nothing
    }

    /// A fragment stays on the wire: count it; the next write starts with a 0x00.
    public func dropFragment() {
        partialFrames.add(1, ordering: .relaxed)
        resync.store(true, ordering: .relaxed)
    }

    static func monotonicMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// Writes to a file descriptor (a serial port opened elsewhere, a pty, a pipe), put in O_NONBLOCK:
/// a full device makes the writer thread wait at most `stallTimeout`, then it is a link fault.
/// EPIPE, EIO and EBADF mean the link is gone.
public final class FileDescriptorWriter: ByteWriter {
    public let link: DescriptorLink
    private let label: String
    public init(fd: Int32, stallTimeout: Duration = .milliseconds(50)) {
        link = DescriptorLink(fd: fd, stallTimeout: stallTimeout)
        label = "fd \(fd)"
    }
    public var fd: Int32 { link.fd }
    public var isConnected: Bool { link.isConnected }
    public func write(_ bytes: UnsafeRawBufferPointer) throws { try link.write(bytes, name: label) }
    public func emergencyWrite(_ bytes: UnsafeRawBufferPointer) -> Bool { link.emergencyWrite(bytes) }
    public func writeOnce(_ bytes: UnsafeRawBufferPointer) -> SingleWrite { link.writeOnce(bytes) }
    public func dropFragment() { link.dropFragment() }
}

/// Writes to a serial port of Transports (libserialport for real ports, termios for ptys), so a
/// motor driver can share the port its sensor frames arrive on. Bytes go straight to the port's
/// non-blocking descriptor with the bounded wait of `DescriptorLink` (not the port's own 100 ms
/// poll). A port that reports the device gone is closed and the link marked down; one opened from
/// an endpoint can be reopened when the device is back (`reconnect`).
public final class SerialPortWriter: ByteWriter {
    /// Held only by the writer thread and by reconnect/close (never by the dispatch thread).
    private let port: Mutex<(any SerialPort)?>
    private let opener: (@Sendable () throws -> any SerialPort)?
    public let link: DescriptorLink
    public let name: String

    /// A port opened elsewhere; it cannot be reopened.
    public init(port: any SerialPort, stallTimeout: Duration = .milliseconds(50)) {
        self.port = Mutex(port)
        opener = nil
        name = port.path
        link = DescriptorLink(fd: port.fileDescriptor, stallTimeout: stallTimeout)
    }

    /// Opens `endpoint` now (a missing device is an error here, at start-up).
    public init(endpoint: SerialEndpoint, settings: SerialSettings, stallTimeout: Duration = .milliseconds(50)) throws {
        let opener: @Sendable () throws -> any SerialPort = { try SerialPortOpener.open(endpoint, settings: settings) }
        let opened = try opener()
        port = Mutex(opened)
        self.opener = opener
        name = endpoint.description
        link = DescriptorLink(fd: opened.fileDescriptor, stallTimeout: stallTimeout)
    }

    /// An atomic read: the dispatch thread asks this, so it must not take the port's lock.
    public var isConnected: Bool { link.isConnected }
    public func emergencyWrite(_ bytes: UnsafeRawBufferPointer) -> Bool { link.emergencyWrite(bytes) }
    public func dropFragment() { link.dropFragment() }

    /// The port's lock only if free (a reconnect holds it while it opens the device): the
    /// descriptor cannot be closed under this write.
    public func writeOnce(_ bytes: UnsafeRawBufferPointer) -> SingleWrite {
        port.withLockIfAvailable { current -> SingleWrite in
            current == nil ? .nothing : link.writeOnce(bytes)
        } ?? .nothing
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try port.withLock { current in
            guard let open = current else { throw ActuatorError(.disconnected, backend: name) }
            do {
                try link.write(bytes, name: name)
            } catch let error as ActuatorError {
                if error.code == .disconnected {
                    _ = link.detach()
                    open.close()
                    current = nil
                }
                throw error
            }
        }
    }

    /// Closes the current port (if any) and opens the endpoint again.
    public func reconnect() throws {
        guard let opener else { throw ActuatorError(.disconnected, backend: name, detail: "opened elsewhere: cannot reopen") }
        let fresh = try opener()
        port.withLock { current in
            _ = link.detach()  // no emergency write may reach a descriptor being closed
            current?.close()
            current = fresh
            link.replace(fd: fresh.fileDescriptor)
        }
    }

    public func close() {
        port.withLock { current in
            _ = link.detach()
            current?.close()
            current = nil
        }
    }
}

/// Motor drivers on a serial link speaking robotd's framed protocol (docs/serial-protocol.md):
/// each approved command becomes one motor-command frame. Encoding uses a preallocated buffer;
/// the device write runs on the set's writer thread, or — a direct lane — on the dispatch thread
/// when one non-blocking write(2) takes the whole frame (`DirectWriting`). The safe-state frames
/// are encoded once, at init, for the emergency path.
public final class SerialFrameBackend: ActuatorBackend, HeartbeatSending, EmergencyStopping, DirectWriting {
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
        /// bytes[pendingStart..<pendingEnd]: the rest of a frame a direct attempt left partly written.
        var pendingStart = 0
        var pendingEnd = 0
        deinit { bytes.deallocate() }
    }
    /// Taken by the writer thread (and by start/stop on their threads); the dispatch thread only
    /// tries it (direct writes).
    private let buffer = Mutex(Buffer())
    private let emergency: EmergencyFrames

    public init(name: String, mappings: [Mapping], writer: any ByteWriter) {
        self.name = name
        self.mappings = mappings
        self.writer = writer
        var byChannel: [Int: Int] = [:]
        for (i, m) in mappings.enumerated() { byChannel[m.channel.index] = i }
        self.byChannel = byChannel
        emergency = EmergencyFrames(mappings.map {
            MotorCommandMessage(channel: $0.motor, mode: $0.mode, deenergize: true, value: $0.safeValue)
        })
    }

    /// The writer knows whether its link is up (and comes back: a re-plugged cable).
    public var isConnected: Bool { writer.isConnected }

    public func write(_ command: ApprovedCommand, token: DeviceWriteToken) throws {
        guard let i = byChannel[command.channel.index] else { throw ActuatorError(.unknownChannel, backend: name) }
        let value: Float = switch command.value {
        case .continuous(let v): Float(v)
        case .discrete(let s): Float(s)
        }
        try send(MotorCommandMessage(channel: mappings[i].motor, mode: mappings[i].mode,
                                     deenergize: command.deenergize, value: value))
    }

    public func applySafeState(token: DeviceWriteToken) throws {
        for m in mappings {
            try send(MotorCommandMessage(channel: m.motor, mode: m.mode, deenergize: true, value: m.safeValue))
        }
    }

    public func applySafeState(channel: ChannelID, token: DeviceWriteToken) throws {
        guard let i = byChannel[channel.index] else { throw ActuatorError(.unknownChannel, backend: name) }
        let m = mappings[i]
        try send(MotorCommandMessage(channel: m.motor, mode: m.mode, deenergize: true, value: m.safeValue))
    }

    /// The protocol's heartbeat frame (type 0x01, empty payload).
    public func sendHeartbeat(token: DeviceWriteToken) throws {
        try frame { sequence, out in
            Frame.encode(type: Frame.MessageType.heartbeat.rawValue, sequence: sequence, payload: UnsafeRawBufferPointer(start: nil, count: 0),
                         into: out)
        }
    }

    /// The preencoded safe-state frames in one non-blocking write(2) on the descriptor the writer
    /// holds in an atomic: no lock (the writer thread may be inside `send` holding `buffer`), no
    /// wait. They start with a 0x00 so that a frame the writer left half on the wire is dropped by
    /// the receiver rather than swallowing the first safe-state frame.
    public func emergencySafeState(token: DeviceWriteToken) throws {
        guard writer.emergencyWrite(emergency.bytes) else {
            throw ActuatorError(.writeFailed, backend: name, detail: "emergency write did not (entirely) get out")
        }
    }

    // MARK: Direct writes (DirectWriting)

    public func tryWrite(_ command: ApprovedCommand, token: DeviceWriteToken) -> DirectWriteAttempt {
        guard let i = byChannel[command.channel.index] else { return .notSent }
        let value: Float = switch command.value {
        case .continuous(let v): Float(v)
        case .discrete(let s): Float(s)
        }
        return tryFrame(MotorCommandMessage(channel: mappings[i].motor, mode: mappings[i].mode,
                                            deenergize: command.deenergize, value: value))
    }

    public func trySafeValue(channel: ChannelID, token: DeviceWriteToken) -> DirectWriteAttempt {
        guard let i = byChannel[channel.index] else { return .notSent }
        let m = mappings[i]
        return tryFrame(MotorCommandMessage(channel: m.motor, mode: m.mode, deenergize: true, value: m.safeValue))
    }

    public func finishPartialWrite(token: DeviceWriteToken) throws {
        try buffer.withLock { buffer in
            guard buffer.pendingEnd > buffer.pendingStart else { return }
            let rest = UnsafeRawBufferPointer(rebasing: buffer.bytes[buffer.pendingStart..<buffer.pendingEnd])
            buffer.pendingStart = 0
            buffer.pendingEnd = 0
            do {
                try writer.write(rest)
            } catch var error as ActuatorError {
                error.backend = name
                throw error
            }
        }
    }

    public func abandonPartialWrite() {
        buffer.withLock { dropPending(&$0) }
    }

    private func dropPending(_ buffer: inout Buffer) {
        guard buffer.pendingEnd > buffer.pendingStart else { return }
        buffer.pendingStart = 0
        buffer.pendingEnd = 0
        writer.dropFragment()
    }

    /// The sequence number advances only when bytes went out (a retry by the writer takes the next).
    private func tryFrame(_ message: MotorCommandMessage) -> DirectWriteAttempt {
        buffer.withLockIfAvailable { buffer -> DirectWriteAttempt in
            guard buffer.pendingEnd == buffer.pendingStart else { return .notSent }
            let sequence = buffer.sequence &+ 1
            guard let n = message.encode(sequence: sequence, into: buffer.bytes) else { return .notSent }
            switch writer.writeOnce(UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<n])) {
            case .all:
                buffer.sequence = sequence
                return .written
            case .nothing:
                return .notSent
            case .partial(let sent):
                buffer.sequence = sequence
                buffer.pendingStart = sent
                buffer.pendingEnd = n
                return .partial
            }
        } ?? .notSent
    }

    // MARK: Frames

    private func send(_ message: MotorCommandMessage) throws {
        try frame { sequence, out in message.encode(sequence: sequence, into: out) }
    }

    private func frame(_ encode: (UInt8, UnsafeMutableRawBufferPointer) -> Int?) throws {
        try buffer.withLock { buffer in
            // A fragment nobody finished (the set settles it first; this is the backstop): the
            // new frame must not be glued onto it.
            dropPending(&buffer)
            buffer.sequence &+= 1
            guard let n = encode(buffer.sequence, buffer.bytes) else {
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

/// Safe-state frames encoded once (sequence 0), behind a leading 0x00 delimiter.
final class EmergencyFrames: @unchecked Sendable {
    // @unchecked: written only in init, read-only afterwards.
    let bytes: UnsafeRawBufferPointer

    init(_ messages: [MotorCommandMessage]) {
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 + messages.count * Frame.maxWireCount, alignment: 1)
        storage[0] = 0
        var count = 1
        for message in messages {
            let out = UnsafeMutableRawBufferPointer(rebasing: storage[count..<(count + Frame.maxWireCount)])
            count += message.encode(sequence: 0, into: out) ?? 0
        }
        bytes = UnsafeRawBufferPointer(rebasing: storage[0..<count])
    }

    deinit { UnsafeMutableRawBufferPointer(mutating: bytes).deallocate() }
}
