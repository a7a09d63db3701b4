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
        /// The sockets to the server's port before the request started (their inodes).
        var socketsBefore: Set<UInt64> = []
        /// The request's own socket, once its response began (see `PeerSocket`).
        var socket: PeerSocket?
    }

    private let limit: Int
    private let deadline: Duration
    private let teardown: TeardownQueue
    /// The server's port, where the request's socket is looked for.
    private let port: Int
    private let state = Mutex(State())

    private init(limit: Int, deadline: Duration, teardown: TeardownQueue, port: Int) {
        self.limit = limit
        self.deadline = deadline
        self.teardown = teardown
        self.port = port
    }

    /// Sends `request`; returns the status and the whole body, or throws a `PlanBackendError`
    /// (`timeout`, `responseTooLarge`, `redirectRefused`, `transport`, `cancelled`). The session is
    /// torn down on `teardown`, a serial queue of the caller's (one per back end).
    static func send(_ request: URLRequest, deadline: Duration, limit: Int, teardown: TeardownQueue) async throws -> Response {
        // A port always: the back end accepts http:// and https:// only.
        let port = request.url?.port ?? (request.url?.scheme?.lowercased() == "https" ? 443 : 80)
        let exchange = HTTPExchange(limit: limit, deadline: deadline, teardown: teardown, port: port)
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
                let before = PeerSocket.inodes(toPort: port)
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
        // The caller first: the teardown below may wait (see `PeerSocket`). Then, for an exchange cut
        // short, its connection is reset at once: the server's next send fails, libcurl reads the end
        // of the stream, and the teardown's `cancel()` no longer waits behind a flood.
        continuation?.resume(with: result)
        if early { socket?.reset() }
        guard task != nil || session != nil || socket != nil else { return }
        // On the back end's serial queue, so that no shared thread waits and a back end whose
        // teardowns wait holds one thread, however many requests end.
        teardown.run {
            task?.cancel()
            session?.invalidateAndCancel()
            if let socket { PeerSocketClaims.shared.release(socket) }
        }
    }

    // MARK: URLSessionDataDelegate

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        // The response began: the connection is up, its socket is the one new one to the port.
        let now = PeerSocket.connected(toPort: port)
        let late = state.withLock { state -> PeerSocket? in
            state.status = status
            guard state.socket == nil, let socket = PeerSocketClaims.shared.claim(now: now, before: state.socketsBefore) else { return nil }
            guard !state.finished else { return socket }
            state.socket = socket
            return nil
        }
        // Ended meanwhile — early, as nothing else ends an exchange before its response: its
        // teardown was queued without the socket, which is shut down and given back here.
        if let late {
            late.reset()
            PeerSocketClaims.shared.release(late)
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
