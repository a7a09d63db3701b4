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
    public init?(payload: ArraySlice<UInt8>) {
        guard payload.count == Self.payloadCount, let mode = Mode(rawValue: payload[payload.startIndex + 1]) else { return nil }
        let s = payload.startIndex
        channel = payload[s]
        self.mode = mode
        deenergize = payload[s + 2] & 1 != 0
        let bits = UInt32(payload[s + 3]) | UInt32(payload[s + 4]) << 8 | UInt32(payload[s + 5]) << 16 | UInt32(payload[s + 6]) << 24
        value = Float(bitPattern: bits)
    }
}

/// Splits a byte stream at 0x00 delimiters and checks each frame. Corrupt frames are counted and
/// skipped; decoding resynchronises at the next delimiter.
public struct FrameDecoder: Sendable {
    public struct Decoded: Sendable, Equatable {
        public var type: UInt8
        public var sequence: UInt8
        public var payload: [UInt8]
    }

    public private(set) var pending: [UInt8] = []
    public private(set) var framesDecoded = 0
    public private(set) var framesRejected = 0
    /// Bytes that ended up in a decoded frame (delimiter included) or in a rejected one.
    public private(set) var bytesDecoded = 0
    public private(set) var bytesRejected = 0
    let maxFrame = Frame.maxWireCount

    public init() {}

    public mutating func feed<C: Collection<UInt8>>(_ bytes: C, deliver: (Decoded) -> Void) {
        for byte in bytes {
            if byte != 0 {
                pending.append(byte)
                if pending.count > maxFrame {  // runaway garbage: drop it, count it, resync at the next 0x00
                    bytesRejected += pending.count
                    framesRejected += 1
                    pending.removeAll(keepingCapacity: true)
                }
                continue
            }
            defer { pending.removeAll(keepingCapacity: true) }
            if pending.isEmpty { bytesRejected += 1; continue }  // stray delimiter
            guard let raw = COBS.decode(pending), raw.count >= 4 else {
                framesRejected += 1
                bytesRejected += pending.count + 1
                continue
            }
            let crc = UInt16(raw[raw.count - 2]) << 8 | UInt16(raw[raw.count - 1])
            guard CRC16.checksum(raw[0..<(raw.count - 2)]) == crc else {
                framesRejected += 1
                bytesRejected += pending.count + 1
                continue
            }
            framesDecoded += 1
            bytesDecoded += pending.count + 1
            deliver(Decoded(type: raw[0], sequence: raw[1], payload: Array(raw[2..<(raw.count - 2)])))
        }
    }
}
