import CTransport
import Codecs
import Foundation
import Glibc
import Synchronization
import TestSupport
import Testing
@testable import Transports

/// A pseudo-terminal pair: the test holds the master (playing the device); robotd opens the slave.
final class PseudoTerminal {
    let master: Int32
    let slavePath: String
    init() throws {
        var name = [CChar](repeating: 0, count: 128)
        master = tr_open_pty(&name, name.count)
        try #require(master >= 0, "posix_openpt failed: errno \(errno)")
        slavePath = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    func write(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { Glibc.write(master, $0.baseAddress, $0.count) } }
    func readAvailable(timeoutMilliseconds: Int32 = 1000) -> [UInt8] {
        var poller = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, timeoutMilliseconds) > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = Glibc.read(master, &buffer, buffer.count)
        return n > 0 ? Array(buffer.prefix(n)) : []
    }
    func close() { Glibc.close(master) }
}

final class Collected: Sendable {
    let events = Mutex<[SerialReader.LinkEvent]>([])
    let bytes = Mutex<[UInt8]>([])
}

@Suite("Serial transport", .serialized)
struct SerialTransportTests {
    @Test func when_opening_a_pty_expect_the_termios_path_and_bytes_both_ways() throws {
        let pty = try PseudoTerminal()
        defer { pty.close() }
        let port = try SerialPortOpener.open(.path(pty.slavePath), settings: SerialSettings(baud: 115_200))
        defer { port.close() }
        #expect(port.backend == "termios")
        let frame = Frame.encode(.range, sequence: 3) { RangeMessage(deviceTimeMicros: 5, range: 0.75).write(into: $0) }
        pty.write(frame)
        var received: [UInt8] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
        defer { buffer.deallocate() }
        for _ in 0..<20 where received.count < frame.count {
            let n = try port.read(into: buffer, timeoutMilliseconds: 100)
            received += Array(buffer.prefix(n))
        }
        #expect(received == frame)
        try [UInt8]([1, 2, 3, 0]).withUnsafeBytes { try port.write($0) }
        #expect(pty.readAvailable() == [1, 2, 3, 0])
    }

    @Test func when_the_far_end_closes_expect_disconnected_from_read() throws {
        let pty = try PseudoTerminal()
        let port = try TermiosSerialPort(path: pty.slavePath, settings: SerialSettings())
        defer { port.close() }
        pty.close()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        let error = #expect(throws: SerialError.self) { _ = try port.read(into: buffer, timeoutMilliseconds: 500) }
        #expect(error?.code == .disconnected)
    }

    /// The reader opens a stable name (like udev's /dev/serial/by-id links); the device goes away
    /// and comes back on another pty; the reader reports both and reads again.
    @Test func when_the_device_goes_away_and_comes_back_expect_disconnect_then_reconnect_events() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("robotd-serial-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let link = dir.appendingPathComponent("imu").path
        var pty = try PseudoTerminal()
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: pty.slavePath)
        let collected = Collected()
        let reader = try SerialReader(endpoint: .path(link), settings: SerialSettings(),
                                      backoff: .init(initialMilliseconds: 20, maximumMilliseconds: 100),
                                      onEvent: { event in collected.events.withLock { $0.append(event) } },
                                      onBytes: { bytes, _ in collected.bytes.withLock { $0 += Array(bytes) } })
        defer { reader.stop() }
        #expect(waitUntil(seconds: 5) { collected.events.withLock { $0.contains { if case .connected = $0 { true } else { false } } } })
        pty.write(Array("first\n".utf8))
        #expect(waitUntil(seconds: 5) { collected.bytes.withLock { $0 } == Array("first\n".utf8) })

        pty.close()  // unplugged
        #expect(waitUntil(seconds: 5) { collected.events.withLock { $0.contains { if case .disconnected = $0 { true } else { false } } } })

        pty = try PseudoTerminal()  // plugged in again, maybe under another pts number
        defer { pty.close() }
        try FileManager.default.removeItem(atPath: link)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: pty.slavePath)
        #expect(waitUntil(seconds: 5) { reader.counters.connections.load(ordering: .relaxed) >= 2 })
        pty.write(Array("second\n".utf8))
        #expect(waitUntil(seconds: 5) { collected.bytes.withLock { $0 } == Array("first\nsecond\n".utf8) })
        #expect(reader.counters.disconnections.load(ordering: .relaxed) == 1)
        let connected = collected.events.withLock { $0 }.filter { if case .connected(_, "termios") = $0 { true } else { false } }
        #expect(connected.count == 2)
    }

    @Test func when_the_endpoint_does_not_exist_expect_open_failed_events_with_growing_backoff() throws {
        let collected = Collected()
        let reader = try SerialReader(endpoint: .path("/nonexistent/ttyUSB9"), settings: SerialSettings(),
                                      backoff: .init(initialMilliseconds: 10, maximumMilliseconds: 40),
                                      onEvent: { event in collected.events.withLock { $0.append(event) } },
                                      onBytes: { _, _ in })
        #expect(waitUntil(seconds: 5) { collected.events.withLock { $0.count } >= 4 })
        reader.stop()
        let delays = collected.events.withLock { $0 }.compactMap { event -> Int? in
            if case .openFailed(_, _, let retry) = event { retry } else { nil }
        }
        #expect(Array(delays.prefix(4)) == [10, 20, 40, 40])
    }

    // libserialport: what can run on this machine (no USB serial devices, no /dev/ttyUSB*).

    @Test func when_listing_ports_with_libserialport_expect_a_list_without_error_no_usb_devices_here() throws {
        let ports = try SerialPortInfo.list()
        // Every entry names a real device node, once: an empty or made-up path would not stat.
        for port in ports {
            var info = stat()
            #expect(stat(port.path, &info) == 0 && info.st_mode & S_IFMT == S_IFCHR, "\(port.path) is not a character device")
        }
        #expect(Set(ports.map(\.path)).count == ports.count)
    }

    @Test func when_libserialport_opens_a_missing_port_expect_not_found() {
        let error = #expect(throws: SerialError.self) { _ = try LibSerialPort(path: "/dev/ttyUSB_robotd_missing", settings: SerialSettings()) }
        #expect(error?.code == .notFound)
    }

    @Test func when_libserialport_is_given_a_pty_expect_refusal_which_is_why_termios_exists() throws {
        let pty = try PseudoTerminal()
        defer { pty.close() }
        #expect(throws: SerialError.self) { _ = try LibSerialPort(path: pty.slavePath, settings: SerialSettings()) }
    }

    @Test func when_usb_serial_number_is_unknown_expect_not_found_naming_it() {
        do {
            _ = try SerialPortOpener.resolve(.usbSerial("NO-SUCH-SERIAL"))
            Issue.record("resolved an unknown serial number")
        } catch {
            #expect(error.code == .notFound && error.detail.contains("NO-SUCH-SERIAL"))
        }
        #expect(SerialEndpoint("usb-serial:A1B2") == .usbSerial("A1B2"))
        #expect(SerialEndpoint("/dev/ttyACM0") == .path("/dev/ttyACM0"))
    }

    @Test func when_settings_are_invalid_expect_bad_settings() throws {
        let pty = try PseudoTerminal()
        defer { pty.close() }
        for settings in [SerialSettings(baud: 12345), SerialSettings(dataBits: 9), SerialSettings(stopBits: 3)] {
            do {
                _ = try TermiosSerialPort(path: pty.slavePath, settings: settings)
                Issue.record("accepted \(settings)")
            } catch {
                #expect(error.code == .badSettings)
            }
        }
        let odd = try TermiosSerialPort(path: pty.slavePath, settings: SerialSettings(baud: 9600, dataBits: 7, parity: .odd, stopBits: 2))
        odd.close()
    }

    @Test func when_path_is_not_a_tty_expect_configure_failed() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("not-a-tty-\(getpid())").path
        _ = FileManager.default.createFile(atPath: file, contents: Data())
        defer { try? FileManager.default.removeItem(atPath: file) }
        do {
            _ = try TermiosSerialPort(path: file, settings: SerialSettings())
            Issue.record("opened a regular file as a serial port")
        } catch {
            #expect(error.code == .configureFailed)
        }
    }
}

@Suite("libserialport on a real port")
struct LibSerialPortRealTests {
    static var nativePort: String? {
        (try? SerialPortInfo.list())?.first { $0.transport == "native" && FileManager.default.fileExists(atPath: $0.path) }?.path
    }

    /// This VM has a native UART (/dev/ttyS0, listed by libserialport): open and configure it
    /// through the libserialport path, read with a short time-out, close. Nothing is written.
    @Test(.enabled(if: nativePort != nil, "no native serial port on this machine"))
    func when_a_native_port_exists_expect_libserialport_opens_configures_and_reads_it() throws {
        let path = try #require(Self.nativePort)
        // The UART may be the kernel console: save its line settings and put them back afterwards.
        let saved = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK)
        try #require(saved >= 0)
        var original = termios()
        try #require(tcgetattr(saved, &original) == 0)
        defer {
            _ = tcsetattr(saved, TCSANOW, &original)
            close(saved)
        }
        let port = try SerialPortOpener.open(.path(path), settings: SerialSettings(baud: 115_200, parity: .even, stopBits: 2))
        #expect(port.backend == "libserialport")
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { buffer.deallocate() }
        // Nothing is attached and nothing was written: the read waits out its time-out and returns
        // no bytes (a sentinel shows the buffer was not written either).
        buffer.initializeMemory(as: UInt8.self, repeating: 0xA5)
        let clock = ContinuousClock()
        let began = clock.now
        let n = try port.read(into: buffer, timeoutMilliseconds: 20)
        let waited = clock.now - began
        #expect(n == 0, "read \(Array(buffer.prefix(max(n, 0))))")
        #expect(buffer.allSatisfy { $0 == 0xA5 })
        #expect(waited >= .milliseconds(15), "returned after \(waited), before the 20 ms time-out")
        var applied = termios()
        #expect(tcgetattr(saved, &applied) == 0)
        #expect(cfgetospeed(&applied) == speed_t(B115200))
        #expect(applied.c_cflag & tcflag_t(PARENB) != 0 && applied.c_cflag & tcflag_t(CSTOPB) != 0)  // 8E2 really applied
        port.close()
    }
}
