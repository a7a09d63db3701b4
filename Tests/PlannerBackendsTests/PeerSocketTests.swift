import Dispatch
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Glibc
import Synchronization
import Testing
import TestSupport
@testable import PlannerBackends

/// A TCP listener on one loopback address (the whole of 127.0.0.0/8 is this machine's).
final class LoopbackListener: Sendable {
    let fd: Int32
    let port: UInt16

    init(address: String, port: UInt16 = 0) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw SocketTestError("socket: errno \(errno)") }
        var on: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var name = LoopbackListener.address(address, port)
        let bound = withUnsafePointer(to: &name) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(descriptor, 8) == 0 else {
            let why = errno
            close(descriptor)
            throw SocketTestError("bind \(address):\(port): errno \(why)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &name) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        fd = descriptor
        self.port = UInt16(bigEndian: name.sin_port)
    }

    deinit { close(fd) }

    static func address(_ text: String, _ port: UInt16) -> sockaddr_in {
        var name = sockaddr_in()
        name.sin_family = sa_family_t(AF_INET)
        name.sin_port = port.bigEndian
        _ = inet_pton(AF_INET, text, &name.sin_addr)
        return name
    }

    /// The next connection, or nil after `seconds`.
    func accept(seconds: Double) -> Int32? {
        guard SocketIO.readable(fd, seconds: seconds) else { return nil }
        let connection = Glibc.accept(fd, nil, nil)
        return connection >= 0 ? connection : nil
    }
}

struct SocketTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Small blocking socket helpers for the tests' own ends of connections.
enum SocketIO {
    static func connectTCP(_ address: String, _ port: UInt16) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var name = LoopbackListener.address(address, port)
        let connected = withUnsafePointer(to: &name) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); return nil }
        return fd
    }

    static func readable(_ fd: Int32, seconds: Double) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, Int32(seconds * 1000)) == 1
    }

    /// Reads until the end of an HTTP request's head (the body, if any, is left).
    static func readHead(_ fd: Int32, seconds: Double) -> Bool {
        var received: [UInt8] = []
        let end = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        var chunk = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < end {
            guard readable(fd, seconds: 0.1) else { continue }
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return false }
            received += chunk[0..<count]
            if received.count >= 4, String(decoding: received, as: UTF8.self).contains("\r\n\r\n") { return true }
        }
        return false
    }

    static func send(_ fd: Int32, _ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// `head` and the end of the server's side in one segment (TCP_CORK): the client's socket is in
    /// CLOSE_WAIT before its reader can see the head.
    static func sendAndHalfClose(_ fd: Int32, _ head: String) -> Bool {
        var on: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_CORK, &on, socklen_t(MemoryLayout<Int32>.size))
        let sent = send(fd, head)
        return shutdown(fd, Int32(SHUT_WR)) == 0 && sent
    }

    enum End: Equatable { case reset, closed, open, other(Int32) }

    /// What the other side of `fd` did within `seconds`: reset it, closed it, or neither.
    static func peerEnd(_ fd: Int32, seconds: Double) -> End {
        let end = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        var chunk = [UInt8](repeating: 0, count: 65536)
        while ContinuousClock.now < end {
            guard readable(fd, seconds: 0.05) else { continue }
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { return .closed }
            if count < 0 { return errno == ECONNRESET ? .reset : .other(errno) }
        }
        return .open
    }

    /// Both ends of a connection still connected: no error on either, and a message goes through.
    static func intact(client: Int32, server: Int32) -> Bool {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(client, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0 else { return false }
        guard peerEnd(server, seconds: 0.05) == .open, send(client, "ping") else { return false }
        guard readable(server, seconds: 2) else { return false }
        var chunk = [UInt8](repeating: 0, count: 16)
        let count = chunk.withUnsafeMutableBytes { recv(server, $0.baseAddress, $0.count, 0) }
        return count == 4 && Array(chunk[0..<4]) == Array("ping".utf8)
    }
}

/// A model server at 127.0.0.1:P and, on the same port at 127.0.0.2, a listener that is not HTTP
/// (an MQTT broker, say). Each test's server side runs on a thread of its own: it takes the
/// exchange's request and, while the exchange runs, this process opens another connection —
/// robotd's control connection reconnecting, in life — then answers as the test says.
final class SamePortRig: Sendable {
    let model: LoopbackListener
    let other: LoopbackListener
    /// The process's other connection, both ends (client, server side), once opened.
    let decoy = Mutex<(client: Int32, server: Int32)?>(nil)
    /// The model server's end of the exchange's connection.
    let modelConnection = Mutex<Int32?>(nil)

    init() throws {
        var lastError: (any Error)?
        for _ in 0..<20 {
            do {
                let model = try LoopbackListener(address: "127.0.0.1")
                let other = try LoopbackListener(address: "127.0.0.2", port: model.port)
                self.model = model
                self.other = other
                return
            } catch {
                lastError = error
            }
        }
        throw lastError ?? SocketTestError("no port free on both addresses")
    }

    deinit {
        if let d = decoy.withLock({ $0 }) { close(d.client); close(d.server) }
        if let m = modelConnection.withLock({ $0 }) { close(m) }
    }

    var url: URL { URL(string: "http://127.0.0.1:\(model.port)/v1/chat/completions")! }

    func request() -> URLRequest {
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.httpBody = Data(#"{"model":"m"}"#.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        return request
    }

    /// The other connection, to 127.0.0.2:P, from this process.
    func openDecoy() -> Bool {
        guard let client = SocketIO.connectTCP("127.0.0.2", other.port), let server = other.accept(seconds: 5) else { return false }
        decoy.withLock { $0 = (client, server) }
        return true
    }

    var decoyIntact: Bool {
        guard let d = decoy.withLock({ $0 }) else { return false }
        return SocketIO.intact(client: d.client, server: d.server)
    }

    /// Accepts the exchange's connection and reads its request, opens the decoy, then runs `answer`
    /// on the model's connection. `ready` is signalled once the decoy is open.
    func serve(ready: DispatchSemaphore, answer: @escaping @Sendable (Int32) -> Void) {
        Thread { [self] in
            guard let connection = model.accept(seconds: 20) else { return }
            modelConnection.withLock { $0 = connection }
            guard SocketIO.readHead(connection, seconds: 10), openDecoy() else { return }
            ready.signal()
            answer(connection)
        }.start()
    }
}

extension PlannerBackendsTimedTests {
    /// Which socket an exchange that ends early resets (review Medium 1): its own connection to the
    /// model server, never another socket of this process to the same port number — robotd's MQTT
    /// control connection carries the remote stop. Real sockets on two loopback addresses sharing a
    /// port; the exchange is `HTTPExchange` itself. Each of these fails on the matching by remote
    /// port alone (ESTABLISHED sockets only, the late path resetting what it found).
    @Suite("Peer socket: only the model's own connection is reset")
    struct PeerSocketTests {
        static func waitFor(_ semaphore: DispatchSemaphore, seconds: Double) async -> Bool {
            await withCheckedContinuation { done in
                DispatchQueue.global().async { done.resume(returning: semaphore.wait(timeout: .now() + seconds) == .success) }
            }
        }

        /// The response begins (a head, then nothing) after another socket of this process to the
        /// same port, on 127.0.0.2, was opened: two new sockets to port P. The exchange takes its
        /// own — connected to 127.0.0.1:P — and resets it at the deadline (the model's server sees a
        /// reset); the other connection is untouched. By port alone, two candidates: none taken,
        /// the connection only closed.
        @Test func when_another_socket_to_the_same_port_opens_during_the_exchange_expect_only_the_models_connection_reset() async throws {
            let rig = try SamePortRig()
            let ready = DispatchSemaphore(value: 0)
            rig.serve(ready: ready) { connection in
                _ = SocketIO.send(connection, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            }
            let teardown = TeardownQueue(label: "test.peer-socket.deadline")
            let result = await Result { try await HTTPExchange.send(rig.request(), deadline: .milliseconds(600), limit: 1 << 20, teardown: teardown) }
            #expect(await Self.waitFor(ready, seconds: 1))
            guard case .failure(let error) = result else { Issue.record("answered"); return }
            #expect(error as? PlanBackendError == .timeout(after: .milliseconds(600)))
            let connection = try #require(rig.modelConnection.withLock { $0 })
            #expect(SocketIO.peerEnd(connection, seconds: 5) == .reset, "the model's connection was not reset")
            #expect(rig.decoyIntact, "the other socket to the same port was reset")
            #expect(await teardown.finished(within: .seconds(10)))
            #expect(PeerSocketClaims.shared.count == 0)
        }

        /// The model's server sends its head and closes its side at once: the exchange's socket is in
        /// CLOSE_WAIT when the response begins, and the declared length is past the cap, so the
        /// exchange ends early. What it resets is its own socket (the server sees the reset), never
        /// the other connection to port P — which, by port and ESTABLISHED alone, was the one candidate.
        @Test func when_the_models_socket_is_in_close_wait_expect_no_other_socket_reset() async throws {
            let rig = try SamePortRig()
            let ready = DispatchSemaphore(value: 0)
            rig.serve(ready: ready) { connection in
                _ = SocketIO.sendAndHalfClose(connection, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n")
            }
            let teardown = TeardownQueue(label: "test.peer-socket.close-wait")
            let result = await Result { try await HTTPExchange.send(rig.request(), deadline: .seconds(20), limit: 65536, teardown: teardown) }
            #expect(await Self.waitFor(ready, seconds: 1))
            guard case .failure(let error) = result else { Issue.record("answered"); return }
            #expect(error as? PlanBackendError == .responseTooLarge(limit: 65536, received: 0))
            #expect(rig.decoyIntact, "another socket to the same port was reset")
            let connection = try #require(rig.modelConnection.withLock { $0 })
            // Its own socket ends: reset by the exchange, or closed by the session first (a race
            // the exchange may lose harmlessly: the server had stopped sending). Never left open.
            let end = SocketIO.peerEnd(connection, seconds: 5)
            #expect(end == .reset || end == .closed, "the exchange's own socket was left \(end)")
            #expect(await teardown.finished(within: .seconds(10)))
        }

        /// The exchange ends (its caller cancels) before the response begins, and its teardown waits
        /// (the back end's queue is busy): the response then begins with the exchange already over —
        /// the late path. Nothing is reset there: not the other connection (by port alone the one
        /// ESTABLISHED candidate, the model's socket being in CLOSE_WAIT), and no claim is left held.
        @Test func when_the_response_begins_after_the_exchange_ended_expect_nothing_reset() async throws {
            let rig = try SamePortRig()
            let ready = DispatchSemaphore(value: 0), answerNow = DispatchSemaphore(value: 0), answered = DispatchSemaphore(value: 0)
            rig.serve(ready: ready) { connection in
                guard answerNow.wait(timeout: .now() + 20) == .success else { return }
                _ = SocketIO.sendAndHalfClose(connection, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
                answered.signal()
            }
            let teardown = TeardownQueue(label: "test.peer-socket.late")
            let busy = DispatchSemaphore(value: 0)
            teardown.run { busy.wait() }
            let exchange = Task { try await HTTPExchange.send(rig.request(), deadline: .seconds(20), limit: 65536, teardown: teardown) }
            #expect(await Self.waitFor(ready, seconds: 20), "the request never arrived")
            exchange.cancel()
            guard case .failure(let error) = await exchange.result else { Issue.record("answered"); busy.signal(); return }
            #expect(error as? PlanBackendError == .cancelled)
            answerNow.signal()
            #expect(await Self.waitFor(answered, seconds: 5))
            // The session is not torn down (its queue is busy): it reads the response, late.
            try await Task.sleep(for: .milliseconds(500))
            #expect(rig.decoyIntact, "the late path reset another socket to the same port")
            busy.signal()
            #expect(await teardown.finished(within: .seconds(10)))
            #expect(PeerSocketClaims.shared.count == 0)
            // Its own socket too: the late path takes nothing and resets nothing, the teardown
            // closes it (a FIN, never an RST: an RST would mean the late path acted).
            let connection = try #require(rig.modelConnection.withLock { $0 })
            #expect(SocketIO.peerEnd(connection, seconds: 5) != .reset, "the late path reset the exchange's own socket")
        }

        /// A socket the daemon excludes (its MQTT clients' sockets, `ExcludedSockets`) is never taken,
        /// even one to the model server's very address and port opened during the exchange: the
        /// exchange takes its own (the one left) and resets it; the excluded one is untouched.
        @Test func when_an_excluded_socket_to_the_same_address_and_port_opens_expect_it_never_taken() async throws {
            let rig = try SamePortRig()
            let excludedPair = Mutex<(client: Int32, server: Int32)?>(nil)
            let ready = DispatchSemaphore(value: 0)
            let excluded = ExcludedSockets()
            excluded.add { excludedPair.withLock { $0?.client } }
            Thread {
                guard let connection = rig.model.accept(seconds: 20) else { return }
                rig.modelConnection.withLock { $0 = connection }
                guard SocketIO.readHead(connection, seconds: 10),
                      let client = SocketIO.connectTCP("127.0.0.1", rig.model.port), let server = rig.model.accept(seconds: 5) else { return }
                excludedPair.withLock { $0 = (client, server) }
                ready.signal()
                _ = SocketIO.send(connection, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            }.start()
            defer { if let pair = excludedPair.withLock({ $0 }) { close(pair.client); close(pair.server) } }
            let teardown = TeardownQueue(label: "test.peer-socket.excluded")
            let result = await Result {
                try await HTTPExchange.send(rig.request(), deadline: .milliseconds(600), limit: 1 << 20, teardown: teardown, excluded: excluded)
            }
            #expect(await Self.waitFor(ready, seconds: 1))
            guard case .failure = result else { Issue.record("answered"); return }
            let pair = try #require(excludedPair.withLock { $0 })
            #expect(SocketIO.intact(client: pair.client, server: pair.server), "the excluded socket was reset")
            let connection = try #require(rig.modelConnection.withLock { $0 })
            #expect(SocketIO.peerEnd(connection, seconds: 5) == .reset)
            #expect(await teardown.finished(within: .seconds(10)))
        }

        /// Peers compare as numbers: an IPv4 address mapped into IPv6 is the IPv4 address, the port
        /// counts, and a name resolves to its addresses (IPv4 and IPv6).
        @Test func when_addresses_are_compared_expect_numbers_not_spellings() {
            let v4 = PeerAddress(bytes: [127, 0, 0, 1], port: 8080)
            let mapped = PeerAddress(bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 127, 0, 0, 1], port: 8080)
            #expect(v4 == mapped)
            #expect(v4 != PeerAddress(bytes: [127, 0, 0, 2], port: 8080))
            #expect(v4 != PeerAddress(bytes: [127, 0, 0, 1], port: 8081))
            #expect(PeerAddress.resolve(host: "127.0.0.1", port: 8080) == [v4])
            #expect(PeerAddress.resolve(host: "[::1]", port: 443) == [PeerAddress(bytes: Array(repeating: 0, count: 15) + [1], port: 443)])
            #expect(PeerAddress.resolve(host: "localhost", port: 80).contains(PeerAddress(bytes: [127, 0, 0, 1], port: 80)))
            #expect(PeerAddress.resolve(host: "no such host.invalid", port: 80).isEmpty)
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
