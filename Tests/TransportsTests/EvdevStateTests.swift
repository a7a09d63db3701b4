import Foundation
import Glibc
import Testing
@testable import Transports

/// What a device's keys and axes are at open (EVIOCGKEY, EVIOCGABS), decoded apart from the
/// ioctls: there is no /dev/input on this machine, so the decoding is tested on the bytes the
/// kernel would write, and the ioctls on what is here (a FIFO, a plain file), where they fail.
@Suite("evdev: key bitmap and axis records at open")
struct EvdevStateTests {
    static func code(_ name: String) throws -> UInt16 { try #require(InputEvent.code(named: name)).code }

    /// Bit `code % 8` of byte `code / 8`: BTN_TL (0x136) is bit 6 of byte 38.
    @Test func a_key_bitmap_tells_each_keys_level_and_nothing_beyond_its_bytes() throws {
        let tl = try Self.code("BTN_TL"), south = try Self.code("BTN_SOUTH"), tr = try Self.code("BTN_TR")
        #expect(tl == 0x136 && south == 0x130 && tr == 0x137)
        var bytes = [UInt8](repeating: 0, count: EvdevKeyBitmap.byteCount)
        bytes[38] = 1 << 6
        let bitmap = EvdevKeyBitmap(bytes: bytes)
        #expect(bitmap.isDown(tl) == true)
        #expect(bitmap.isDown(south) == false && bitmap.isDown(tr) == false)  // its neighbours in the same byte
        #expect(bitmap.isDown(try Self.code("KEY_ESC")) == false)
        bytes[38] = 0xFF & ~(1 << 6)
        let inverse = EvdevKeyBitmap(bytes: bytes)
        #expect(inverse.isDown(tl) == false && inverse.isDown(south) == true && inverse.isDown(tr) == true)
        // Every key code has its bit: KEY_MAX is the last bit of the last byte.
        #expect(EvdevKeyBitmap.byteCount == 96)
        #expect(EvdevKeyBitmap(bytes: [UInt8](repeating: 0xFF, count: 96)).isDown(0x2FF) == true)
        // A shorter answer (the kernel fills what it has): the keys beyond it are not known.
        let short = EvdevKeyBitmap(bytes: Array(bytes.prefix(38)))
        let esc = try Self.code("KEY_ESC")
        #expect(short.isDown(tl) == nil && short.isDown(esc) == false)
        #expect(EvdevKeyBitmap(bytes: []).isDown(0) == nil)
    }

    /// `struct input_absinfo`: value, minimum, maximum, fuzz, flat, resolution — six native
    /// 32-bit integers; the value becomes the axis's event as a device would report it.
    @Test func an_axis_record_decodes_its_six_fields_and_reports_its_value_as_an_event() throws {
        let fields: [Int32] = [-32768, -32768, 32767, 16, 128, 3]
        let info = try #require(fields.withUnsafeBytes { EvdevAxisInfo(bytes: $0) })
        #expect(info == EvdevAxisInfo(value: -32768, minimum: -32768, maximum: 32767, fuzz: 16, flat: 128, resolution: 3))
        let absY = try Self.code("ABS_Y")
        let event = info.event(code: absY)
        #expect(event.type == 3 && event.code == absY && event.value == -32768)
        // Through the mapping, as the reader delivers it: full deflection, inverted.
        let axis = InputMapping.Axis(code: "ABS_Y", name: "drive", invert: true)
        #expect(axis.normalise(event.value) == 1)
        let centred = try #require([Int32(0), 0, 255, 0, 15, 0].withUnsafeBytes { EvdevAxisInfo(bytes: $0) })
        #expect(centred.value == 0 && centred.maximum == 255)
        #expect([Int32](repeating: 0, count: 5).withUnsafeBytes { EvdevAxisInfo(bytes: $0) } == nil)  // five fields: no record
        #expect(MemoryLayout<Int32>.size * 6 == 24)
    }

    /// On what is not an evdev device both ioctls fail (ENOTTY), said in words: the caller then
    /// leaves the key or the axis unknown.
    @Test func on_a_fifo_or_a_plain_file_the_ioctls_fail_in_words() throws {
        let directory = NSTemporaryDirectory() + "robotd-evdev-state-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fifo = directory + "/fifo", file = directory + "/file"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(FileManager.default.createFile(atPath: file, contents: Data(count: 96)))
        for path in [fifo, file] {
            let fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)  // read-write: a FIFO opens without a writer
            #expect(fd >= 0)
            defer { close(fd) }
            #expect(throws: InputError("EVIOCGKEY: not an evdev device")) { try EvdevKeyBitmap.read(fd: fd) }
            #expect(throws: InputError("EVIOCGABS: not an evdev device")) { try EvdevAxisInfo.read(fd: fd, code: 1) }
        }
    }
}
