import Foundation

/// The path of an executable built next to the tests (`robotd`, `robotd-sim`).
public func builtProduct(_ name: String) -> String {
    URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        .appendingPathComponent(name).path
}

/// A built program run as a user runs it, its standard output and error collected as they come
/// (both at once, so neither pipe can fill and stall the child), for tests that wait on a line,
/// send a signal, then look at the exit status.
public final class Subprocess: @unchecked Sendable {
    // @unchecked: `process` is driven by the test's thread; the output is in `Buffers`.
    public let process = Process()
    private let buffers = Buffers()
    private let drained = DispatchGroup()

    /// What the reader threads hold (not the Subprocess, so that dropping it kills the child).
    private final class Buffers: @unchecked Sendable {
        // @unchecked: guarded by `lock`.
        let lock = NSLock()
        var out = Data()
        var err = Data()
    }

    /// `environment`: the child's whole environment (nil: this process's).
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let outPipe = Pipe(), errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        try process.run()
        // One reader thread per pipe, each to EOF (the child's exit closes the write ends).
        for (pipe, isOut) in [(outPipe, true), (errPipe, false)] {
            drained.enter()
            let handle = pipe.fileHandleForReading
            let buffers = self.buffers, drained = self.drained
            let thread = Thread {
                // availableData returns what one read(2) gets (read(upToCount:) waits for the count).
                while case let data = handle.availableData, !data.isEmpty {
                    buffers.lock.withLock { if isOut { buffers.out.append(data) } else { buffers.err.append(data) } }
                }
                drained.leave()
            }
            thread.start()
        }
    }

    public var stdout: String { buffers.lock.withLock { String(decoding: buffers.out, as: UTF8.self) } }
    public var stderr: String { buffers.lock.withLock { String(decoding: buffers.err, as: UTF8.self) } }

    /// Standard output's lines that parse as JSON objects.
    public var jsonLines: [[String: Any]] {
        stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    public func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the exit (up to `seconds`; then ends it and returns nil) and for the pipes to
    /// drain; returns the exit status.
    public func wait(seconds: Double = 30) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            end()
            return nil
        }
        process.waitUntilExit()
        _ = drained.wait(timeout: .now() + 5)
        return process.terminationStatus
    }

    /// Polls standard output (or error) until it contains `text`, up to `seconds`.
    public func waitFor(_ text: String, inStandardError: Bool = false, seconds: Double = 15) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (inStandardError ? stderr : stdout).contains(text) { return true }
            if !process.isRunning { break }
            usleep(10_000)
        }
        return (inStandardError ? stderr : stdout).contains(text)
    }

    /// SIGTERM first, so that the program can clean up (stop a broker it started, remove its
    /// paths), then SIGKILL after 5 s.
    private func end() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { end() }
}
