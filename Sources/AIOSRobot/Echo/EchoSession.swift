import Foundation
import Synchronization
import Transports

/// Runs one echo: an input's reader thread decodes and prints lines; the caller waits until
/// `count` lines were printed or `timeout` passed, then stops it and prints the summary.
public final class EchoSession: Sendable {
    private let printed = Atomic<Int>(0)
    private let done = DispatchSemaphore(value: 0)
    private let limit: Int?
    private let output: @Sendable (String) -> Void
    private let outputLock = Mutex(())

    public init(count: Int?, output: @escaping @Sendable (String) -> Void) {
        limit = count
        self.output = output
    }

    /// Prints one line; signals completion when the count is reached. Lines past the count are dropped.
    public func emit(_ line: String) {
        let n = printed.add(1, ordering: .relaxed).newValue
        if let limit, n > limit { return }
        outputLock.withLock { _ in output(line) }
        if let limit, n == limit { done.signal() }
    }

    public func finish() { done.signal() }

    /// Waits for the count, the time-out, or `finish()`. Returns false on time-out.
    @discardableResult
    public func wait(timeout: Double?) -> Bool {
        if let timeout { return done.wait(timeout: .now() + timeout) == .success }
        done.wait()
        return true
    }

    public var lines: Int { min(printed.load(ordering: .relaxed), limit ?? .max) }

    /// Echo of a serial input (termios for ptys, libserialport for real ports).
    public static func serial(_ endpoint: SerialEndpoint, settings: SerialSettings, codec: SerialEcho.Codec,
                              session: EchoSession, log: @escaping @Sendable (String) -> Void) throws -> EchoInput {
        let echo = Confined(SerialEcho(source: "serial:\(endpoint)", codec: codec))
        let link = LinkWatch()
        let reader = try SerialReader(endpoint: endpoint, settings: settings, onEvent: { event in
            switch event {
            case .connected(let path, let backend):
                link.opened()
                log("connected to \(path) (\(backend))")
            case .disconnected(let path, let reason): log("disconnected from \(path): \(reason)")
            case .openFailed(let name, let reason, _):
                // Retried with backoff: said once, and again only when the cause changes.
                let why = "cannot open \(name): \(reason)"
                if link.failed(why) { log(why + "; retrying") }
            }
        }, onBytes: { bytes, arrival in
            echo.use { $0.feed(bytes, arrival: arrival) { session.emit($0) } }
        })
        return EchoInput(stop: { reader.stop() }, summary: { echo.use { $0.summary } },
                         neverOpened: { link.neverOpened(default: "\(endpoint) never opened") })
    }

    /// Echo of an input device: libevdev for character devices, the raw input_event stream for a
    /// FIFO or a recorded file.
    public static func evdev(path: String, grab: Bool, session: EchoSession,
                             log: @escaping @Sendable (String) -> Void) throws -> EchoInput {
        let echo = Confined(InputEcho(source: "evdev:\(path)"))
        let link = LinkWatch()
        let reader = try InputDeviceReader(path: path, grab: grab, onNotice: { notice, _ in
            switch notice {
            case .opened(let name): log("input device: \(name)")
            case .resynchronised: log("SYN_DROPPED: resynchronised by libevdev")
            case .ended(let reason):
                // A stream that ends before its first event never opened (no such file, …).
                _ = link.failed(reason)
                log(reason)
                session.finish()
            case .writerGone: log("the writer went away; waiting for the next one")
            case .resumed: log("events again")
            case .keysAtOpen: break  // no keys asked: echo shows events only
            }
        }) { event, arrival in
            link.opened()
            echo.use { $0.feed(event: event, arrival: arrival) { session.emit($0) } }
        }
        return EchoInput(stop: { reader.stop() }, summary: { echo.use { $0.summary(pendingBytes: reader.pendingBytes) } },
                         neverOpened: { link.neverOpened(default: nil) })
    }
}

/// One running echo as its command sees it.
public struct EchoInput: Sendable {
    public let stop: @Sendable () -> Void
    /// The summary line (counts of what was decoded and rejected).
    public let summary: @Sendable () -> String
    /// Why the input never delivered: the device never opened or the broker never connected (the
    /// last cause, in words); nil once it did.
    public let neverOpened: @Sendable () -> String?
}

/// Whether an input ever opened, and the last reason it could not: set on the reader's thread,
/// read by the command at the end.
final class LinkWatch: Sendable {
    private let state = Mutex<(opened: Bool, lastFailure: String?)>((false, nil))

    func opened() { state.withLock { $0.opened = true } }

    /// Records a failure; true if its text differs from the previous one (worth a log line).
    func failed(_ reason: String) -> Bool {
        state.withLock { s in
            defer { s.lastFailure = reason }
            return s.lastFailure != reason
        }
    }

    func neverOpened(default fallback: String?) -> String? {
        state.withLock { s in s.opened ? nil : (s.lastFailure ?? fallback) }
    }
}

/// A decoder owned by one reader thread; the lock only orders the final summary read after it.
final class Confined<Value: ~Copyable>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: consuming Value) { self.value = value }
    func use<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

extension EchoSession {
    /// Echo of MQTT topics (wildcards allowed): each message as a JSON line with the number found
    /// in it (bare, or at `fieldPath` in JSON) and the raw payload text.
    public static func mqtt(options: MQTTOptions, topics: [String], qos: Int, fieldPath: String?, session: EchoSession,
                            log: @escaping @Sendable (String) -> Void) throws -> EchoInput {
        let rejected = Atomic<Int>(0)
        let link = LinkWatch()
        let broker = "\(options.host):\(options.port)"
        let client = try MQTTClient(options: options, onEvent: { event in
            switch event {
            case .connected:
                link.opened()
                log("connected to \(broker)")
            case .disconnected(code: 0): break  // our own clean DISCONNECT at the end
            case .disconnected: log("disconnected from \(broker): \(event.reason); reconnecting")
            case .connectRefused, .connectFailed:
                // Retried with backoff: said once, and again only when the cause changes.
                let why = "cannot connect to \(broker): \(event.reason)"
                if link.failed(why) { log(why + "; retrying") }
            }
        }, onMessage: { message in
            var j = JSONLine()
            j.add("source", "mqtt:\(message.topic)")
            j.add("arrival_ns", message.arrival)
            j.add("kind", "mqtt")
            j.add("topic", message.topic)
            switch MQTTPayload.number(message.payload, fieldPath: fieldPath) {
            case .success(let value): j.add("value", value)
            case .failure(let error):
                rejected.add(1, ordering: .relaxed)
                j.add("value", nil as Double?)
                j.add("error", "\(error)")
            }
            j.add("payload", String(decoding: message.payload, as: UTF8.self))
            j.add("retained", message.retained)
            session.emit(j.text)
        })
        for topic in topics { try client.subscribe(.init(filter: topic, qos: qos)) }
        try client.start()
        let counters = client.counters
        return EchoInput(stop: { client.stop() }, summary: {
            var j = JSONLine()
            j.add("source", "mqtt:\(options.host):\(options.port)")
            j.add("kind", "summary")
            j.add("messages", Int(counters.received.load(ordering: .relaxed)))
            j.add("not_a_number", rejected.load(ordering: .relaxed))
            j.add("reconnects", max(0, Int(counters.connects.load(ordering: .relaxed)) - 1))
            return j.text
        }, neverOpened: { link.neverOpened(default: "never connected to \(broker)") })
    }
}
