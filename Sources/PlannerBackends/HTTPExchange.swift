import Dispatch
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization

/// One HTTP request with a total deadline and a response-size cap.
///
/// URLSession's `timeoutIntervalForRequest` is an idle timeout (a server that sends a byte now and
/// then never trips it), and Linux has no `bytes(for:)` to count a body as it comes. So the
/// exchange is its own session's delegate: it counts bytes in `didReceive data` and cancels past
/// the cap, and a timer cancels the task at the deadline. Whichever ends it first — completion,
/// cap, deadline, a redirect, the caller's cancellation — resumes the caller exactly once.
///
/// A redirect is never followed: URLSession would send the request again, `Authorization` header
/// included, to wherever `Location` points. The exchange ends with `redirectRefused` instead.
final class HTTPExchange: NSObject, URLSessionDataDelegate, Sendable {
    struct Response {
        var status: Int
        var body: Data
    }

    private struct State {
        var continuation: CheckedContinuation<Response, any Error>?
        var finished = false
        var session: URLSession?
        var task: URLSessionDataTask?
        var status = 0
        var body = Data()
        /// This process's sockets before the request started (their inodes, every kind and state).
        var socketsBefore: Set<UInt64> = []
        /// The request's own socket, once its response began (see `PeerSocket`).
        var socket: PeerSocket?
    }

    private let limit: Int
    private let deadline: Duration
    private let teardown: TeardownQueue
    /// The server's host and port: the request's socket is the one connected to them.
    private let host: String
    private let port: Int
    /// Sockets never taken, whatever they are connected to (the daemon's MQTT connections).
    private let excluded: ExcludedSockets?
    private let state = Mutex(State())

    private init(limit: Int, deadline: Duration, teardown: TeardownQueue, host: String, port: Int, excluded: ExcludedSockets?) {
        self.limit = limit
        self.deadline = deadline
        self.teardown = teardown
        self.host = host
        self.port = port
        self.excluded = excluded
    }

    /// Sends `request`; returns the status and the whole body, or throws a `PlanBackendError`
    /// (`timeout`, `responseTooLarge`, `redirectRefused`, `transport`, `cancelled`). The session is
    /// torn down on `teardown`, a serial queue of the caller's (one per back end). `excluded`: sockets
    /// the exchange never takes to reset (see `PeerSocket`).
    static func send(_ request: URLRequest, deadline: Duration, limit: Int, teardown: TeardownQueue,
                     excluded: ExcludedSockets? = nil) async throws -> Response {
        // A port always: the back end accepts http:// and https:// only.
        let port = request.url?.port ?? (request.url?.scheme?.lowercased() == "https" ? 443 : 80)
        let exchange = HTTPExchange(limit: limit, deadline: deadline, teardown: teardown, host: request.url?.host ?? "",
                                    port: port, excluded: excluded)
        return try await exchange.run(request)
    }

    private func run(_ request: URLRequest) async throws -> Response {
        let configuration = URLSessionConfiguration.ephemeral
        // The idle timeout only backs up the deadline timer below.
        configuration.timeoutIntervalForRequest = max(1, deadline.inSeconds + 1)
        configuration.timeoutIntervalForResource = max(1, deadline.inSeconds + 1)
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Response, any Error>) in
                let alreadyCancelled = state.withLock { state -> Bool in
                    if state.finished { return true }
                    state.continuation = continuation
                    return false
                }
                if alreadyCancelled {
                    continuation.resume(throwing: PlanBackendError.cancelled)
                    return
                }
                // The session holds its delegate (this exchange) strongly until `finish` invalidates it.
                let session = URLSession(configuration: configuration, delegate: self, delegateQueue: nil)
                let task = session.dataTask(with: request)
                // Every socket of this process now: only one made after this can be the request's.
                let before = PeerSocket.inodes()
                let started = state.withLock { state -> Bool in
                    guard !state.finished else { return false }
                    state.session = session
                    state.task = task
                    state.socketsBefore = before
                    return true
                }
                guard started else {
                    session.invalidateAndCancel()
                    return
                }
                // Weak: an exchange that ended early is not kept until its deadline; a late timer is a no-op.
                deadlineQueue.asyncAfter(deadline: .now() + .nanoseconds(Int(clamping: deadline.inNanoseconds))) { [weak self] in
                    guard let self else { return }
                    self.finish(.failure(PlanBackendError.timeout(after: self.deadline)))
                }
                task.resume()
            }
        } onCancel: {
            finish(.failure(PlanBackendError.cancelled))
        }
    }

    /// Ends the exchange once: resumes the caller, resets its connection when it ends early, and
    /// queues the teardown of the task and the session.
    private func finish(_ result: Result<Response, any Error>, early: Bool = true) {
        let ended = state.withLock { state -> (CheckedContinuation<Response, any Error>?, URLSession?, URLSessionDataTask?, PeerSocket?)? in
            guard !state.finished else { return nil }
            state.finished = true
            defer {
                state.continuation = nil
                state.session = nil
                state.task = nil
                state.socket = nil
                state.body = Data()
            }
            return (state.continuation, state.session, state.task, state.socket)
        }
        guard let (continuation, session, task, socket) = ended else { return }
        // An exchange cut short has its connection reset at once: the server's next send fails,
        // libcurl reads the end of the stream, and the teardown's `cancel()` no longer waits behind
        // a flood. Then the teardown is queued, and only then the caller resumed (neither waits):
        // so whoever waits for the back end's teardowns once its request returned
        // (`TeardownQueue.finished(within:)`) finds this one queued.
        if early { socket?.reset() }
        if task != nil || session != nil || socket != nil {
            // On the back end's serial queue, so that no shared thread waits and a back end whose
            // teardowns wait holds one thread, however many requests end.
            teardown.run {
                task?.cancel()
                session?.invalidateAndCancel()
                if let socket { PeerSocketClaims.shared.release(socket) }
            }
        }
        continuation?.resume(with: result)
    }

    /// The request's own socket, if one can be told from every other (see `PeerSocket`): made since
    /// the exchange started, TCP, connected to the server's address and port, not excluded. The host
    /// is resolved here, once, on the session's delegate queue (not on the caller's thread).
    private func candidates(before: Set<UInt64>) -> Set<PeerSocket> {
        let fresh = PeerSocket.all().filter { !before.contains($0.inode) }
        guard !fresh.isEmpty else { return [] }
        let peers = PeerAddress.resolve(host: host, port: port)
        guard !peers.isEmpty else { return [] }
        let excludedDescriptors = excluded?.descriptors() ?? []
        return fresh.filter { !excludedDescriptors.contains($0.fd) && $0.isTCP(connectedToAnyOf: peers) }
    }

    // MARK: URLSessionDataDelegate

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        // The response began: the connection is up (or the server already closed its side), and
        // its socket can be found. An exchange that ended meanwhile looks for none: its teardown
        // was queued without a socket, and nothing is ever reset after the end (`finish` resets
        // only the socket it finds taken, under the same lock).
        let lookup = state.withLock { state -> Set<UInt64>? in
            state.status = status
            return state.finished || state.socket != nil ? nil : state.socketsBefore
        }
        if let before = lookup {
            let found = candidates(before: before)
            state.withLock { state in
                guard !state.finished, state.socket == nil, let socket = PeerSocketClaims.shared.claim(found) else { return }
                state.socket = socket
            }
        }
        // A declared length past the cap is refused before a byte of the body arrives.
        if response.expectedContentLength > Int64(limit) {
            completionHandler(.cancel)
            finish(.failure(PlanBackendError.responseTooLarge(limit: limit, received: 0)))
            return
        }
        completionHandler(.allow)
    }

    /// Every redirect is refused: the task ends with the 3xx response itself, and the exchange with
    /// `redirectRefused` at once (the redirect's body is not waited for).
    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
        completionHandler(nil)
        finish(.failure(PlanBackendError.redirectRefused(status: response.statusCode)))
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let received = state.withLock { state -> Int? in
            guard !state.finished else { return nil }
            state.body.append(data)
            return state.body.count
        }
        if let received, received > limit {
            finish(.failure(PlanBackendError.responseTooLarge(limit: limit, received: received)))
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        if let error {
            finish(.failure(PlanBackendError.transport(Self.words(error))), early: false)
            return
        }
        let response = state.withLock { Response(status: $0.status, body: $0.body) }
        finish(.success(response), early: false)
    }

    private static func words(_ error: any Error) -> String {
        let error = error as NSError
        return "\(error.localizedDescription) (\(error.domain) \(error.code))"
    }
}

/// A back end's teardown queue: serial (a back end whose teardowns wait holds one thread), and
/// counted, so that the router can skip a back end whose connections are not torn down yet.
final class TeardownQueue: Sendable {
    private let queue: DispatchQueue
    private let waiting = Atomic<Int>(0)

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    /// Teardowns queued and not yet finished.
    var pending: Int { waiting.load(ordering: .relaxed) }

    func run(_ work: @escaping @Sendable () -> Void) {
        waiting.add(1, ordering: .relaxed)
        // The queue keeps itself until the work ran: a back end dropped meanwhile loses no teardown.
        queue.async { [self] in
            work()
            waiting.subtract(1, ordering: .relaxed)
        }
    }

    /// True once every teardown queued before the call has run, false if `bound` passes first (the
    /// teardowns go on; nothing is cancelled). A mark queued behind them, not counted as pending.
    func finished(within bound: Duration) async -> Bool {
        let once = OnceResult()
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            once.arm(continuation)
            queue.async { once.resume(true) }
            deadlineQueue.asyncAfter(deadline: .now() + .nanoseconds(Int(clamping: bound.inNanoseconds))) { once.resume(false) }
        }
    }
}

/// A continuation resumed once, by whichever comes first.
private final class OnceResult: Sendable {
    private let continuation = Mutex<CheckedContinuation<Bool, Never>?>(nil)

    func arm(_ waiting: CheckedContinuation<Bool, Never>) {
        continuation.withLock { $0 = waiting }
    }

    func resume(_ value: Bool) {
        continuation.withLock { c -> CheckedContinuation<Bool, Never>? in
            defer { c = nil }
            return c
        }?.resume(returning: value)
    }
}

/// Where deadline timers fire: a queue of robotd's own, so that busy or blocked global-queue
/// threads cannot delay a deadline (a timer's work is a few instructions).
let deadlineQueue = DispatchQueue(label: "robotd.planner.deadlines")

extension Duration {
    /// Whole nanoseconds, saturating.
    var inNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds > 0 ? .max : .min }
        return whole.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
    }
}
