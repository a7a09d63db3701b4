import CEvdev
import Glibc
import Platform

/// A device's keys as the kernel holds them now (EVIOCGKEY): bit `code % 8` of byte `code / 8` is
/// set while key `code` is down. The kernel reports a key only when it changes, so this is how a
/// key held since before the device was opened becomes known. Decoded apart from the ioctl, so
/// the decoding is tested without a device.
public struct EvdevKeyBitmap: Sendable, Equatable {
    /// Every key code there is (KEY_MAX) has its bit in this many bytes.
    public static let byteCount = Int(KEY_MAX) / 8 + 1

    /// The bytes the kernel filled.
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// Whether the key is down; nil: its bit lies beyond what the kernel filled (not known).
    public func isDown(_ code: UInt16) -> Bool? {
        let index = Int(code) / 8
        guard index < bytes.count else { return nil }
        return bytes[index] & (1 << UInt8(code % 8)) != 0
    }

    /// The device's key bitmap now; throws when the ioctl fails (ENOTTY: not an evdev device, as
    /// a FIFO or a plain file).
    public static func read(fd: Int32) throws(InputError) -> EvdevKeyBitmap {
        var bits = [UInt8](repeating: 0, count: byteCount)
        let filled = bits.withUnsafeMutableBufferPointer { cevdev_key_bitmap(fd, $0.baseAddress, UInt32($0.count)) }
        guard filled >= 0 else { throw InputError("EVIOCGKEY: \(ioctlWords(errno))") }
        return EvdevKeyBitmap(bytes: Array(bits.prefix(Int(filled))))
    }
}

/// One absolute axis as the kernel holds it now (EVIOCGABS: `struct input_absinfo`, six native
/// 32-bit integers). Decoded apart from the ioctl, so the decoding is tested without a device.
public struct EvdevAxisInfo: Sendable, Equatable {
    public var value: Int32
    public var minimum: Int32
    public var maximum: Int32
    public var fuzz: Int32
    public var flat: Int32
    public var resolution: Int32

    public init(value: Int32, minimum: Int32, maximum: Int32, fuzz: Int32 = 0, flat: Int32 = 0, resolution: Int32 = 0) {
        (self.value, self.minimum, self.maximum, self.fuzz, self.flat, self.resolution) = (value, minimum, maximum, fuzz, flat, resolution)
    }

    /// The record's bytes as the ioctl wrote them; nil: fewer than its six fields.
    public init?(bytes: UnsafeRawBufferPointer) {
        let field = MemoryLayout<Int32>.size
        guard bytes.count >= 6 * field else { return nil }
        func at(_ i: Int) -> Int32 { bytes.loadUnaligned(fromByteOffset: i * field, as: Int32.self) }
        self.init(value: at(0), minimum: at(1), maximum: at(2), fuzz: at(3), flat: at(4), resolution: at(5))
    }

    /// The axis's current position as the event that reports it (the value as it is: the mapping
    /// normalises and clamps it, as it does every event's).
    public func event(code: UInt16) -> InputEvent {
        InputEvent(type: UInt16(EV_ABS), code: code, value: value)
    }

    /// The axis's record now; throws when the ioctl fails (not an evdev device, or one without
    /// absolute axes).
    public static func read(fd: Int32, code: UInt16) throws(InputError) -> EvdevAxisInfo {
        var info = input_absinfo()
        guard cevdev_abs_info(fd, UInt32(code), &info) == 0 else { throw InputError("EVIOCGABS: \(ioctlWords(errno))") }
        guard let decoded = withUnsafeBytes(of: &info, { EvdevAxisInfo(bytes: $0) }) else {
            throw InputError("EVIOCGABS: a record of \(MemoryLayout<input_absinfo>.size) bytes, not six fields")
        }
        return decoded
    }
}

/// An evdev ioctl's errno in words: ENOTTY is "not a terminal" in general, but here it means the
/// file answers no evdev request.
func ioctlWords(_ code: Int32) -> String {
    code == ENOTTY ? "not an evdev device" : SystemErrorWords.text(code)
}
