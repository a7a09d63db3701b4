import CSerial
import Glibc

/// A real serial port opened and configured through libserialport; reads and writes go through
/// its file descriptor (`sp_get_port_handle`) with the shared poll loop.
public final class LibSerialPort: SerialPort {
    public let path: String
    public var backend: String { "libserialport" }
    // The sp_port is owned here and freed in close(); it is only touched by its owner's thread.
    nonisolated(unsafe) private var port: OpaquePointer?
    private let io: DescriptorIO

    public init(path: String, settings: SerialSettings) throws(SerialError) {
        try settings.validate()
        var found: OpaquePointer?
        guard sp_get_port_by_name(path, &found) == SP_OK, let port = found else {
            throw SerialError(.notFound, path: path, detail: Self.lastError())
        }
        guard sp_open(port, SP_MODE_READ_WRITE) == SP_OK else {
            let detail = Self.lastError()
            sp_free_port(port)
            throw SerialError(.openFailed, path: path, errno: sp_last_error_code(), detail: detail)
        }
        let parity: sp_parity = switch settings.parity {
        case .none: SP_PARITY_NONE
        case .even: SP_PARITY_EVEN
        case .odd: SP_PARITY_ODD
        }
        let ok = sp_set_baudrate(port, Int32(settings.baud)) == SP_OK
            && sp_set_bits(port, Int32(settings.dataBits)) == SP_OK
            && sp_set_parity(port, parity) == SP_OK
            && sp_set_stopbits(port, Int32(settings.stopBits)) == SP_OK
            && sp_set_flowcontrol(port, settings.flowControl == .rtscts ? SP_FLOWCONTROL_RTSCTS : SP_FLOWCONTROL_NONE) == SP_OK
        var fd: Int32 = -1
        guard ok, withUnsafeMutablePointer(to: &fd, { sp_get_port_handle(port, UnsafeMutableRawPointer($0)) }) == SP_OK, fd >= 0 else {
            let detail = Self.lastError()
            sp_close(port)
            sp_free_port(port)
            throw SerialError(.configureFailed, path: path, detail: detail)
        }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        self.path = path
        self.port = port
        io = DescriptorIO(fd: fd, path: path)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, timeoutMilliseconds: Int32) throws(SerialError) -> Int {
        try io.read(into: buffer, timeoutMilliseconds: timeoutMilliseconds)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(SerialError) { try io.write(bytes) }
    public var fileDescriptor: Int32 { io.fd }

    public func close() {
        guard let port else { return }
        sp_close(port)
        sp_free_port(port)
        self.port = nil
    }

    static func lastError() -> String {
        guard let message = sp_last_error_message() else { return "" }
        defer { sp_free_error_message(message) }
        return String(cString: message)
    }
}

/// What `robotd ports` prints: every port libserialport can see, with USB identity.
public struct SerialPortInfo: Sendable, Equatable, Codable {
    public var path: String
    public var description: String
    public var transport: String
    public var usbVendorID: UInt16?
    public var usbProductID: UInt16?
    public var usbSerial: String?
    public var manufacturer: String?
    public var product: String?

    public static func list() throws(SerialError) -> [SerialPortInfo] {
        var list: UnsafeMutablePointer<OpaquePointer?>?
        guard sp_list_ports(&list) == SP_OK, let list else {
            throw SerialError(.ioFailed, path: "", detail: "sp_list_ports: \(LibSerialPort.lastError())")
        }
        defer { sp_free_port_list(list) }
        var ports: [SerialPortInfo] = []
        var i = 0
        while let port = list[i] {
            i += 1
            func text(_ p: UnsafeMutablePointer<CChar>?) -> String? { p.map { String(cString: $0) } }
            var info = SerialPortInfo(path: text(sp_get_port_name(port)) ?? "?",
                                      description: text(sp_get_port_description(port)) ?? "",
                                      transport: "native")
            switch sp_get_port_transport(port) {
            case SP_TRANSPORT_USB:
                info.transport = "usb"
                var vid: Int32 = 0, pid: Int32 = 0
                if sp_get_port_usb_vid_pid(port, &vid, &pid) == SP_OK {
                    info.usbVendorID = UInt16(truncatingIfNeeded: vid)
                    info.usbProductID = UInt16(truncatingIfNeeded: pid)
                }
                info.usbSerial = text(sp_get_port_usb_serial(port))
                info.manufacturer = text(sp_get_port_usb_manufacturer(port))
                info.product = text(sp_get_port_usb_product(port))
            case SP_TRANSPORT_BLUETOOTH: info.transport = "bluetooth"
            default: break
            }
            ports.append(info)
        }
        return ports
    }
}

/// Opens an endpoint the way a robot wants: real ports through libserialport, pseudo-terminals
/// (and any tty libserialport refuses) through termios; a USB serial number is looked up first.
public enum SerialPortOpener {
    public static func resolve(_ endpoint: SerialEndpoint) throws(SerialError) -> String {
        switch endpoint {
        case .path(let path): return path
        case .usbSerial(let serial):
            guard let port = try SerialPortInfo.list().first(where: { $0.usbSerial == serial }) else {
                throw SerialError(.notFound, path: endpoint.description, detail: "no port with USB serial number \(serial)")
            }
            return port.path
        }
    }

    public static func open(_ endpoint: SerialEndpoint, settings: SerialSettings) throws(SerialError) -> any SerialPort {
        let path = try resolve(endpoint)
        try checkIsDevice(path)
        let real = resolvedTarget(path)
        if real.hasPrefix("/dev/pts/") || real.hasPrefix("/dev/ptmx") {
            return try TermiosSerialPort(path: path, settings: settings)
        }
        do {
            return try LibSerialPort(path: path, settings: settings)
        } catch let error where error.code == .notFound || error.code == .configureFailed || error.code == .openFailed {
            // libserialport refuses ttys it cannot classify (pseudo-terminals behind a symlink,
            // some USB gadgets); termios can still drive them.
            do {
                return try TermiosSerialPort(path: path, settings: settings)
            } catch let fallback {
                // termios names the cause by its errno (not a tty, permission denied, busy);
                // libserialport's own message often does not ("Invalid argument").
                throw fallback.errno != nil ? fallback : error
            }
        }
    }

    /// A missing path or one that is no character device fails here, in words ("no such file",
    /// "not a serial device (a regular file)"), before either library tries it.
    static func checkIsDevice(_ path: String) throws(SerialError) {
        var info = stat()
        guard stat(path, &info) == 0 else { throw SerialError(.notFound, path: path, errno: errno) }
        let kind: String? = switch info.st_mode & S_IFMT {
        case S_IFCHR: nil
        case S_IFREG: "a regular file"
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO"
        case S_IFSOCK: "a socket"
        default: "not a character device"
        }
        if let kind { throw SerialError(.notASerialDevice, path: path, detail: kind) }
    }

    /// Follows symlinks (udev's /dev/serial/by-id names, test links) to the device node.
    static func resolvedTarget(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
