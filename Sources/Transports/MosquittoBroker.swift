import Foundation
import Glibc

/// A Mosquitto broker started by robotd itself (tests, the demo): a generated config on a free
/// 127.0.0.1 port, started as a child process and stopped by PID. Debian's package does not start
/// one, and nothing here relies on a system broker.
public final class MosquittoBroker: @unchecked Sendable {
    // @unchecked: start/stop are called by the owner's thread only.
    public let port: Int
    public let executable: String
    /// Lines of mosquitto.conf after the listener (default: anonymous clients allowed); e.g.
    /// `allow_anonymous false` and `password_file F` for a broker that wants a login.
    public let settings: [String]
    private let directory: URL
    private var process: Process?

    public init(port: Int? = nil, executable: String = "/usr/sbin/mosquitto", settings: [String] = ["allow_anonymous true"]) throws {
        self.port = try port ?? Self.freePort()
        self.executable = executable
        self.settings = settings
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("robotd-mosquitto-\(getpid())-\(self.port)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// A broker set up by a mosquitto.conf such as examples/mosquitto/mosquitto.conf, on a free
    /// loopback port: the file's own `listener`, `port`, `persistence*`, `log_dest` and `pid_file`
    /// lines give way to this broker's, and relative `password_file` and `acl_file` paths are
    /// taken from the file's folder. Everything else (`allow_anonymous false`, …) is kept.
    public convenience init(configurationFile path: String, port: Int? = nil, executable: String = "/usr/sbin/mosquitto") throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var settings: [String] = []
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            if ["listener", "port", "persistence", "persistence_location", "log_dest", "pid_file"].contains(parts[0]) { continue }
            if ["password_file", "acl_file"].contains(parts[0]), parts.count == 2, !parts[1].hasPrefix("/") {
                settings.append("\(parts[0]) \(folder)/\(parts[1])")
            } else {
                settings.append(line)
            }
        }
        try self.init(port: port, executable: executable, settings: settings)
    }

    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: "/usr/sbin/mosquitto") }

    public var pid: Int32? { process?.processIdentifier }

    /// Starts the broker and waits until it accepts connections (up to 15 s: a loaded machine
    /// starts a TLS listener slowly).
    public func start() throws {
        let config = directory.appendingPathComponent("mosquitto.conf")
        try """
        listener \(port) 127.0.0.1
        \(settings.joined(separator: "\n"))
        persistence false
        log_dest none
        """.write(to: config, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-c", config.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if Self.accepts(port: port) { return }
            if !process.isRunning { break }
            usleep(20_000)
        }
        let exited = !process.isRunning
        stop()
        throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: exited
            ? "mosquitto exited at start on port \(port) (is the port taken?)" : "mosquitto did not accept connections on port \(port) within 15 s"])
    }

    /// Stops the broker by PID (SIGTERM, then SIGKILL after 2 s) and waits for it.
    public func stop() {
        guard let process, process.isRunning else { self.process = nil; return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(2)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        self.process = nil
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port` (a broker already there).
    public static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
