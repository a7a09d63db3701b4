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
    }

    private let limit: Int
    private let deadline: Duration
    private let teardown: DispatchQueue
    private let state = Mutex(State())

    private init(limit: Int, deadline: Duration, teardown: DispatchQueue) {
        self.limit = limit
        self.deadline = deadline
        self.teardown = teardown
    }

    /// Sends `request`; returns the status and the whole body, or throws a `PlanBackendError`
    /// (`timeout`, `responseTooLarge`, `redirectRefused`, `transport`, `cancelled`). The session is
    /// torn down on `teardown`, a serial queue of the caller's (one per back end).
    static func send(_ request: URLRequest, deadline: Duration, limit: Int, teardown: DispatchQueue) async throws -> Response {
        let exchange = HTTPExchange(limit: limit, deadline: deadline, teardown: teardown)
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
                let started = state.withLock { state -> Bool in
                    guard !state.finished else { return false }
                    state.session = session
                    state.task = task
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

    /// Ends the exchange once: cancels the task and the session, resumes the caller.
    private func finish(_ result: Result<Response, any Error>) {
        let ended = state.withLock { state -> (CheckedContinuation<Response, any Error>?, URLSession?, URLSessionDataTask?)? in
            guard !state.finished else { return nil }
            state.finished = true
            defer {
                state.continuation = nil
                state.session = nil
                state.task = nil
                state.body = Data()
            }
            return (state.continuation, state.session, state.task)
        }
        guard let (continuation, session, task) = ended else { return }
        // The caller first: FoundationNetworking's `cancel()` waits for the session's work queue,
        // which a server flooding the connection keeps busy (measured: up to 6.7 s at 0.4 GB/s on
        // loopback). The teardown runs on the back end's serial queue, so that no shared thread
        // waits and a back end whose teardowns wait holds one thread, however many requests end.
        continuation?.resume(with: result)
        if task != nil || session != nil {
            teardown.async {
                task?.cancel()
                session?.invalidateAndCancel()
            }
        }
    }

    // MARK: URLSessionDataDelegate

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        state.withLock { $0.status = status }
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
            finish(.failure(PlanBackendError.transport(Self.words(error))))
            return
        }
        let response = state.withLock { Response(status: $0.status, body: $0.body) }
        finish(.success(response))
    }

    private static func words(_ error: any Error) -> String {
        let error = error as NSError
        return "\(error.localizedDescription) (\(error.domain) \(error.code))"
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
