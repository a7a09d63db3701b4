import CRealtime
import Platform
import Glibc
import Synchronization

/// Reads one serial endpoint on its own thread (never the dispatch thread): opens it, reads with
/// a poll time-out, hands each chunk of bytes over with its arrival instant, and when the device
/// goes away (EOF, EIO, hang-up) reports it and reopens with exponential backoff. Connection
/// changes are events, so the guard and telemetry see them.
public final class SerialReader: Sendable {
    public enum LinkEvent: Sendable, Equatable {
        case connected(path: String, backend: String)
        case disconnected(path: String, reason: String)
        /// Opening failed (`reason` in words: "no such file", "not a serial device", …); the
        /// reader retries after `retryInMilliseconds`.
        case openFailed(endpoint: String, reason: String, retryInMilliseconds: Int)
    }

    public struct Backoff: Sendable, Equatable {
        public var initialMilliseconds: Int
        public var maximumMilliseconds: Int
        public init(initialMilliseconds: Int = 50, maximumMilliseconds: Int = 2_000) {
            self.initialMilliseconds = initialMilliseconds
            self.maximumMilliseconds = maximumMilliseconds
        }
    }

    /// Counters shared between the reader thread and everyone else.
    public final class Counters: Sendable {
        public let bytesRead = Atomic<UInt64>(0)
        public let connections = Atomic<UInt64>(0)
        public let disconnections = Atomic<UInt64>(0)
    }

    public let endpoint: SerialEndpoint
    public let counters = Counters()
    private let worker: StoppableThread

    /// - Parameters:
    ///   - onBytes: called on the reader thread with each chunk and its CLOCK_MONOTONIC arrival (ns).
    ///   - onEvent: connection changes, on the reader thread.
    /// Whether the reader thread runs under SCHED_FIFO (waits briefly for it to start).
    public var runsAtFIFO: Bool { worker.waitForFIFO() }

    public init(endpoint: SerialEndpoint, settings: SerialSettings, backoff: Backoff = Backoff(), fifoPriority: Int? = nil,
                open: @escaping @Sendable (SerialEndpoint, SerialSettings) throws(SerialError) -> any SerialPort = SerialPortOpener.open,
                onEvent: @escaping @Sendable (LinkEvent) -> Void,
                onBytes: @escaping @Sendable (UnsafeRawBufferPointer, Int64) -> Void) throws {
        self.endpoint = endpoint
        let counters = self.counters
        worker = try StoppableThread(name: "serial-reader", fifoPriority: fifoPriority) { stop in
            func stopping() -> Bool { stop.isSet }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
            defer { buffer.deallocate() }
            var delay = backoff.initialMilliseconds
            while !stopping() {
                let port: any SerialPort
                do {
                    port = try open(endpoint, settings)
                } catch {
                    onEvent(.openFailed(endpoint: endpoint.description, reason: Self.words(error), retryInMilliseconds: delay))
                    stop.sleep(milliseconds: delay)
                    delay = min(delay * 2, backoff.maximumMilliseconds)
                    continue
                }
                delay = backoff.initialMilliseconds
                counters.connections.add(1, ordering: .relaxed)
                onEvent(.connected(path: port.path, backend: port.backend))
                var reason = "stopped"
                while !stopping() {
                    do {
                        let n = try port.read(into: buffer, timeoutMilliseconds: 50)
                        if n > 0 {
                            counters.bytesRead.add(UInt64(n), ordering: .relaxed)
                            onBytes(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), rt_monotonic_ns())
                        }
                    } catch {
                        reason = Self.words(error)
                        break
                    }
                }
                port.close()
                if stopping() { break }
                counters.disconnections.add(1, ordering: .relaxed)
                onEvent(.disconnected(path: port.path, reason: reason))
                stop.sleep(milliseconds: delay)
            }
        }
    }

    public func stop() { worker.stop() }

    /// A serial error's cause without its path (the event names the path).
    private static func words(_ error: any Error) -> String { (error as? SerialError)?.reason ?? "\(error)" }

}
