import CEvdev

/// One Linux `struct input_event` (24 bytes on 64-bit Linux: timeval, type, code, value). What
/// libevdev hands over for a real device and what the simulator and recordings stream through a
/// FIFO or file — both are decoded by the same `InputFrameAssembler`.
public struct InputEvent: Sendable, Equatable {
    public var seconds: Int64
    public var microseconds: Int64
    public var type: UInt16
    public var code: UInt16
    public var value: Int32

    public init(seconds: Int64 = 0, microseconds: Int64 = 0, type: UInt16, code: UInt16, value: Int32) {
        self.seconds = seconds
        self.microseconds = microseconds
        self.type = type
        self.code = code
        self.value = value
    }

    public static let size = 24

    public static let synReport = InputEvent(type: UInt16(EV_SYN), code: UInt16(SYN_REPORT), value: 0)
    public static let synDropped = InputEvent(type: UInt16(EV_SYN), code: UInt16(SYN_DROPPED), value: 0)

    /// The kernel's (and libevdev's) name of the code, e.g. "ABS_X", "BTN_SOUTH".
    public var codeName: String {
        guard let name = libevdev_event_code_get_name(UInt32(type), UInt32(code)) else { return "\(type):\(code)" }
        return String(cString: name)
    }

    /// Little-endian wire form (x86-64, aarch64).
    public func write(into bytes: inout [UInt8]) {
        withUnsafeBytes(of: seconds.littleEndian) { bytes += $0 }
        withUnsafeBytes(of: microseconds.littleEndian) { bytes += $0 }
        withUnsafeBytes(of: type.littleEndian) { bytes += $0 }
        withUnsafeBytes(of: code.littleEndian) { bytes += $0 }
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    init(record p: UnsafeRawBufferPointer) {
        seconds = Int64(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: Int64.self))
        microseconds = Int64(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: Int64.self))
        type = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt16.self))
        code = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 18, as: UInt16.self))
        value = Int32(littleEndian: p.loadUnaligned(fromByteOffset: 20, as: Int32.self))
    }

    /// Looks a code up by its libevdev name ("ABS_X", "BTN_SOUTH", "KEY_SPACE"): (type, code).
    public static func code(named name: String) -> (type: UInt16, code: UInt16)? {
        let prefixes: [(String, Int32)] = [("ABS_", EV_ABS), ("BTN_", EV_KEY), ("KEY_", EV_KEY), ("REL_", EV_REL),
                                           ("SW_", EV_SW), ("SYN_", EV_SYN), ("MSC_", EV_MSC)]
        guard let type = prefixes.first(where: { name.hasPrefix($0.0) })?.1 else { return nil }
        let code = libevdev_event_code_from_name(UInt32(type), name)
        return code < 0 ? nil : (UInt16(type), UInt16(code))
    }
}

/// Cuts a byte stream into 24-byte input_event records (a FIFO read may split a record).
public struct InputEventStreamDecoder: Sendable {
    private var partial: [UInt8] = []
    public private(set) var records = 0

    public init() {}

    public mutating func feed(_ bytes: UnsafeRawBufferPointer, deliver: (InputEvent) -> Void) {
        var offset = 0
        if !partial.isEmpty {
            let need = InputEvent.size - partial.count
            let take = min(need, bytes.count)
            partial += bytes[0..<take]
            offset = take
            if partial.count == InputEvent.size {
                partial.withUnsafeBytes { deliver(InputEvent(record: $0)) }
                records += 1
                partial.removeAll(keepingCapacity: true)
            }
        }
        while bytes.count - offset >= InputEvent.size {
            deliver(InputEvent(record: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + InputEvent.size)])))
            records += 1
            offset += InputEvent.size
        }
        if offset < bytes.count { partial += bytes[offset...] }
    }

    public var pendingBytes: Int { partial.count }
}
