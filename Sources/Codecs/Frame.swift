/// robotd's framed binary protocol (docs/serial-protocol.md):
///
///     wire:  COBS( type u8 | sequence u8 | payload … | crc16 u16 big-endian ) 0x00
///
/// The CRC (CRC-16/CCITT-FALSE) covers type, sequence and payload. Multi-byte payload fields
/// are little-endian; reals are IEEE-754 float32.
public enum Frame {
    public static let maxPayload = 64
    /// Bytes of one encoded frame at most, delimiter included.
    public static let maxWireCount = COBS.maxEncodedCount(maxPayload + 4) + 1

    public enum MessageType: UInt8, Sendable {
        case heartbeat = 0x01
        case motorCommand = 0x10
        case imuSample = 0x20
        case wheelEncoders = 0x21
        case range = 0x22
    }

    /// Encodes one frame into `output` and returns the wire length (delimiter included), or nil
    /// if the payload is too long. Allocation-free: the raw frame is staged on the stack.
    public static func encode(type: UInt8, sequence: UInt8, payload: UnsafeRawBufferPointer,
                              into output: UnsafeMutableRawBufferPointer) -> Int? {
        guard payload.count <= maxPayload, output.count >= maxWireCount else { return nil }
        return withUnsafeTemporaryAllocation(byteCount: maxPayload + 4, alignment: 1) { raw -> Int? in
            raw[0] = type
            raw[1] = sequence
            for i in 0..<payload.count { raw[2 + i] = payload[i] }
            let body = UnsafeRawBufferPointer(rebasing: raw[0..<(2 + payload.count)])
            let crc = CRC16.update(CRC16.initial, body)
            raw[2 + payload.count] = UInt8(crc >> 8)
            raw[3 + payload.count] = UInt8(crc & 0xFF)
            let framed = UnsafeRawBufferPointer(rebasing: raw[0..<(4 + payload.count)])
            guard let n = COBS.encode(framed, into: output) else { return nil }
            output[n] = 0
            return n + 1
        }
    }

    public static func encode(type: UInt8, sequence: UInt8, payload: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: maxWireCount)
        let n = payload.withUnsafeBytes { p in out.withUnsafeMutableBytes { encode(type: type, sequence: sequence, payload: p, into: $0) } }
        return Array(out.prefix(n ?? 0))
    }
}

/// A motor command frame (type 0x10), 7 payload bytes:
/// `channel u8 | mode u8 | flags u8 (bit 0: de-energise) | value f32 LE`.
public struct MotorCommandMessage: Sendable, Equatable {
    public enum Mode: UInt8, Sendable { case velocity = 0, position = 1, effort = 2, duty = 3, discrete = 4 }
    public var channel: UInt8
    public var mode: Mode
    public var deenergize: Bool
    public var value: Float

    public init(channel: UInt8, mode: Mode, deenergize: Bool, value: Float) {
        self.channel = channel
        self.mode = mode
        self.deenergize = deenergize
        self.value = value
    }

    public static let payloadCount = 7

    /// Allocation-free encoding of the full wire frame into `output`.
    public func encode(sequence: UInt8, into output: UnsafeMutableRawBufferPointer) -> Int? {
        withUnsafeTemporaryAllocation(byteCount: Self.payloadCount, alignment: 1) { p -> Int? in
            p[0] = channel
            p[1] = mode.rawValue
            p[2] = deenergize ? 1 : 0
            let bits = value.bitPattern.littleEndian
            withUnsafeBytes(of: bits) { for i in 0..<4 { p[3 + i] = $0[i] } }
            return Frame.encode(type: Frame.MessageType.motorCommand.rawValue, sequence: sequence,
                                payload: UnsafeRawBufferPointer(p), into: output)
        }
    }

    /// Decodes a payload (type already known to be 0x10).
    public init?(payload: UnsafeRawBufferPointer) {
        guard payload.count == Self.payloadCount, let mode = Mode(rawValue: payload[1]) else { return nil }
        channel = payload[0]
        self.mode = mode
        deenergize = payload[2] & 1 != 0
        value = payload.float32(at: 3)
    }
}

/// Splits a byte stream at 0x00 delimiters and checks each frame. Corrupt frames are counted and
/// skipped; decoding resynchronises at the next delimiter. Allocation-free after init: bytes
/// accumulate in a fixed buffer and each good frame is handed over as a view into a second one.
public struct FrameDecoder: ~Copyable {
    /// One checked frame, valid only inside the `deliver` callback.
    public struct View {
        public let type: UInt8
        public let sequence: UInt8
        public let payload: UnsafeRawBufferPointer
        public var payloadBytes: [UInt8] { Array(payload) }
    }

    private let buffer: UnsafeMutableRawBufferPointer
    private let scratch: UnsafeMutableRawBufferPointer
    public private(set) var pendingCount = 0
    public private(set) var framesDecoded = 0
    public private(set) var framesRejected = 0
    /// Bytes that ended up in a decoded frame (delimiter included) or in a rejected one.
    public private(set) var bytesDecoded = 0
    public private(set) var bytesRejected = 0

    public init() {
        buffer = .allocate(byteCount: Frame.maxWireCount, alignment: 8)
        scratch = .allocate(byteCount: Frame.maxWireCount, alignment: 8)
    }

    deinit {
        buffer.deallocate()
        scratch.deallocate()
    }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer, deliver: (View) -> Void) {
        for byte in bytes { feed(byte: byte, deliver: deliver) }
    }

    public mutating func feed<C: Collection<UInt8>>(_ bytes: C, deliver: (View) -> Void) {
        for byte in bytes { feed(byte: byte, deliver: deliver) }
    }

    @inline(__always) mutating func feed(byte: UInt8, deliver: (View) -> Void) {
        if byte != 0 {
            if pendingCount == buffer.count {  // runaway garbage: drop it, count it, resync at the next 0x00
                bytesRejected += pendingCount
                framesRejected += 1
                pendingCount = 0
            }
            buffer[pendingCount] = byte
            pendingCount += 1
            return
        }
        let count = pendingCount
        pendingCount = 0
        if count == 0 { bytesRejected += 1; return }  // stray delimiter
        guard let n = COBS.decode(UnsafeRawBufferPointer(rebasing: buffer[0..<count]), into: scratch), n >= 4 else {
            framesRejected += 1
            bytesRejected += count + 1
            return
        }
        let crc = UInt16(scratch[n - 2]) << 8 | UInt16(scratch[n - 1])
        guard CRC16.update(CRC16.initial, UnsafeRawBufferPointer(rebasing: scratch[0..<(n - 2)])) == crc else {
            framesRejected += 1
            bytesRejected += count + 1
            return
        }
        framesDecoded += 1
        bytesDecoded += count + 1
        deliver(View(type: scratch[0], sequence: scratch[1], payload: UnsafeRawBufferPointer(rebasing: scratch[2..<(n - 2)])))
    }
}
