import Glibc
import Platform

/// Line settings of a serial port.
public struct SerialSettings: Sendable, Equatable {
    public enum Parity: String, Sendable, CaseIterable { case none, even, odd }
    public enum FlowControl: String, Sendable, CaseIterable { case none, rtscts }

    public var baud: Int
    public var dataBits: Int
    public var parity: Parity
    public var stopBits: Int
    public var flowControl: FlowControl

    public init(baud: Int = 115_200, dataBits: Int = 8, parity: Parity = .none, stopBits: Int = 1,
                flowControl: FlowControl = .none) {
        self.baud = baud
        self.dataBits = dataBits
        self.parity = parity
        self.stopBits = stopBits
        self.flowControl = flowControl
    }

    public static let standardBauds = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800,
                                       500000, 576000, 921600, 1000000, 1500000, 2000000, 3000000, 4000000]

    public func validate() throws(SerialError) {
        guard Self.standardBauds.contains(baud) else { throw SerialError(.badSettings, path: "", detail: "unsupported baud rate \(baud)") }
        guard (5...8).contains(dataBits) else { throw SerialError(.badSettings, path: "", detail: "data bits must be 5…8") }
        guard stopBits == 1 || stopBits == 2 else { throw SerialError(.badSettings, path: "", detail: "stop bits must be 1 or 2") }
    }
}

/// Why a serial operation failed.
public struct SerialError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Code: String, Sendable {
        case notFound = "not-found"
        /// The path exists but is no tty (a regular file, a directory, /dev/null).
        case notASerialDevice = "not-a-serial-device"
        case openFailed = "open-failed"
        case configureFailed = "configure-failed"
        case badSettings = "bad-settings"
        /// EOF, EIO, POLLHUP: the device went away (unplugged, far end closed).
        case disconnected
        case ioFailed = "io-failed"
    }
    public var code: Code
    public var path: String
    public var errno: Int32?
    public var detail: String

    public init(_ code: Code, path: String, errno: Int32? = nil, detail: String = "") {
        self.code = code
        self.path = path
        self.errno = errno
        self.detail = detail
    }

    /// The cause in words, without the path: "no such file", "not a serial device",
    /// "permission denied", "disconnected (end of file)".
    public var reason: String {
        let words: String
        if code == .notASerialDevice || (code == .configureFailed && errno == ENOTTY) {
            words = "not a serial device"
        } else if let errno, errno != 0 {
            words = SystemErrorWords.text(errno)
        } else {
            words = switch code {
            case .notFound: "not found"
            case .notASerialDevice: "not a serial device"
            case .openFailed: "cannot open"
            case .configureFailed: "cannot configure the line"
            case .badSettings: "bad settings"
            case .disconnected: "disconnected"
            case .ioFailed: "input/output error"
            }
        }
        if detail.isEmpty { return words }
        // A failure without an errno is described by its detail alone ("unsupported baud rate 12345").
        return errno == nil && code == .badSettings ? detail : "\(words) (\(detail))"
    }

    public var description: String { "\(path.isEmpty ? "serial" : path): \(reason)" }
}

/// Where to find a device: a path, or a USB serial number so that a robot's devices keep their
/// names whichever ttyUSB number the kernel gives them.
public enum SerialEndpoint: Sendable, Equatable, CustomStringConvertible {
    case path(String)
    case usbSerial(String)

    public var description: String {
        switch self {
        case .path(let p): p
        case .usbSerial(let s): "usb-serial:\(s)"
        }
    }

    /// `usb-serial:ABC123` or a path.
    public init(_ text: String) {
        self = text.hasPrefix("usb-serial:") ? .usbSerial(String(text.dropFirst("usb-serial:".count))) : .path(text)
    }
}
