import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The TCP socket under one HTTP exchange, found among this process's descriptors, so that an
/// exchange that ends early can end its connection at once.
///
/// Why: FoundationNetworking's `cancel()` and `invalidateAndCancel()` both begin with a `sync` on
/// the session's work queue, where libcurl's socket source runs; a server flooding the connection
/// keeps that queue busy (each 16 KiB read queues its delivery, a new timeout timer and a progress
/// update), so the cancellation waits its turn for seconds while the body is read on — measured
/// 0.1–8.6 s at loopback speed, from the teardown queue or from another queue alike, against
/// 7–42 ms once the socket is reset (see `reset`). URLSession gives no handle on its socket, so the
/// exchange finds it. Resetting another socket of robotd's — the MQTT control connection, which
/// carries the remote stop — would be far worse than not resetting at all, so a socket is taken
/// only when all of these hold (`HTTPExchange`):
///
/// - it did not exist when the exchange started: the exchange notes the inodes of every socket of
///   this process, whatever its kind or state (`inodes()`), before its task starts;
/// - it is a TCP socket connected to the server itself: `getpeername` on a duplicate of the
///   descriptor equals one of the addresses the URL's host resolves to, with the URL's port
///   (`PeerAddress`), compared as numbers, IPv4 and IPv6;
/// - it is not one of the sockets the daemon excludes (`ExcludedSockets`: its MQTT clients');
/// - no other exchange holds it (`PeerSocketClaims`), and it is the only socket left: with two
///   none is taken, and the exchange ends by `cancel()` alone, as before.
///
/// So an MQTT connection is never taken: made before the exchange began, its inode is noted; made
/// during it, it is excluded by its client as soon as libmosquitto has its descriptor, and its peer
/// is the broker — the server's own address and port only if one host serves both on one port,
/// which `robotd check` warns about. Only a socket made during the exchange, by this process, to
/// the server's very address and port, can be taken: the exchange's own, or another request of
/// this process to that server that connected at the same moment (then two are found, none taken).
struct PeerSocket: Sendable, Hashable {
    var fd: Int32
    var inode: UInt64

    /// This process's sockets now (every kind and state): their descriptors and inodes.
    static func all() -> Set<PeerSocket> {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return [] }
        var found = Set<PeerSocket>()
        for name in names {
            guard let fd = Int32(name),
                  let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + name),
                  link.hasPrefix("socket:["), link.hasSuffix("]"),
                  let inode = UInt64(link.dropFirst("socket:[".count).dropLast()) else { continue }
            found.insert(PeerSocket(fd: fd, inode: inode))
        }
        return found
    }

    /// The inodes of this process's sockets now: what an exchange notes before it starts.
    static func inodes() -> Set<UInt64> {
        Set(all().map(\.inode))
    }

    /// True when `fd` is still this socket, a TCP one, connected to one of `peers`. On a duplicate
    /// of the descriptor, so that a number closed and reused meanwhile is never looked at as this
    /// socket (its inode differs).
    func isTCP(connectedToAnyOf peers: Set<PeerAddress>) -> Bool {
        withOwnDuplicate { copy in
            var type: Int32 = 0, protocolNumber: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(copy, SOL_SOCKET, SO_TYPE, &type, &length) == 0, type == Int32(SOCK_STREAM.rawValue) else { return false }
            length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(copy, SOL_SOCKET, SO_PROTOCOL, &protocolNumber, &length) == 0,
                  protocolNumber == Int32(IPPROTO_TCP) else { return false }
            var storage = sockaddr_storage()
            length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let named = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(copy, $0, &length) }
            }
            guard named == 0, let peer = PeerAddress(storage) else { return false }
            return peers.contains(peer)
        } ?? false
    }

    /// Resets the connection, if `fd` is still this socket: `connect` with `AF_UNSPEC` disconnects a
    /// TCP socket at once (Linux sends the peer a reset) without closing the descriptor, which stays
    /// libcurl's; libcurl then reads the end of the stream. A `shutdown` alone is not enough: when
    /// libcurl had read everything, the peer stayed blocked on a zero window for good (seen: a
    /// flooding peer in CLOSE-WAIT with 4 MB unsent). On a duplicate of the descriptor, so a number
    /// closed and reused meanwhile by someone else is never touched (its inode differs).
    @discardableResult
    func reset() -> Bool {
        withOwnDuplicate { copy in
            var unspecified = sockaddr()
            unspecified.sa_family = sa_family_t(AF_UNSPEC)
            if connect(copy, &unspecified, socklen_t(MemoryLayout<sockaddr>.size)) == 0 { return true }
            // Not disconnected: a reset when libcurl closes it, and the end of the stream now.
            var abortive = linger(l_onoff: 1, l_linger: 0)
            _ = setsockopt(copy, SOL_SOCKET, SO_LINGER, &abortive, socklen_t(MemoryLayout<linger>.size))
            return shutdown(copy, Int32(SHUT_RDWR)) == 0
        } ?? false
    }

    /// `body` on a duplicate of `fd` that is still this socket (same inode); nil when it is not.
    private func withOwnDuplicate<T>(_ body: (Int32) -> T) -> T? {
        let copy = dup(fd)
        guard copy >= 0 else { return nil }
        defer { close(copy) }
        var status = stat()
        guard fstat(copy, &status) == 0, (status.st_mode & S_IFMT) == S_IFSOCK, UInt64(status.st_ino) == inode else { return nil }
        return body(copy)
    }
}

/// A TCP peer as numbers: the family, the address's bytes and the port. An IPv4 address mapped
/// into IPv6 (`::ffff:a.b.c.d`) is the IPv4 address, so either spelling of one peer compares equal.
struct PeerAddress: Sendable, Hashable {
    var bytes: [UInt8]
    var port: UInt16

    init(bytes: [UInt8], port: UInt16) {
        // 16 bytes of ::ffff:a.b.c.d are the 4 of a.b.c.d.
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            self.bytes = Array(bytes[12..<16])
        } else {
            self.bytes = bytes
        }
        self.port = port
    }

    /// An IPv4 or IPv6 socket address; nil for any other family.
    init?(_ storage: sockaddr_storage) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            self.init(bytes: withUnsafeBytes(of: address.sin_addr) { Array($0) }, port: UInt16(bigEndian: address.sin_port))
        case AF_INET6:
            let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            self.init(bytes: withUnsafeBytes(of: address.sin6_addr) { Array($0) }, port: UInt16(bigEndian: address.sin6_port))
        default:
            return nil
        }
    }

    /// Every address `host` resolves to (IPv4 and IPv6), with `port`: the peers the URL's request
    /// may be connected to. Empty when it does not resolve (then no socket is taken). `host` may be
    /// written with brackets (`[::1]`).
    static func resolve(host: String, port: Int) -> Set<PeerAddress> {
        var name = host
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        guard let port16 = UInt16(exactly: port) else { return [] }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, String(port), &hints, &list) == 0 else { return [] }
        defer { freeaddrinfo(list) }
        var found = Set<PeerAddress>()
        var next = list
        while let entry = next {
            if let address = entry.pointee.ai_addr, Int(entry.pointee.ai_addrlen) <= MemoryLayout<sockaddr_storage>.size {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) { target in
                    target.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(entry.pointee.ai_addrlen)))
                }
                // The port as given: getaddrinfo's is the same, but the URL's is what was asked for.
                if let peer = PeerAddress(storage) { found.insert(PeerAddress(bytes: peer.bytes, port: port16)) }
            }
            next = entry.pointee.ai_next
        }
        return found
    }
}

/// Sockets of this process that no exchange ever takes, whatever they are connected to: the
/// daemon's MQTT connections (the control connection carries the remote stop). Owned by whoever
/// wires the back ends (`RobotDaemon`) and given to each of them; each source says its descriptor
/// now (nil while it has none), so that a reconnect's new socket is excluded as soon as its client
/// holds it.
public final class ExcludedSockets: Sendable {
    private let sources = Mutex<[@Sendable () -> Int32?]>([])

    public init() {}

    /// Adds a source of one descriptor (an MQTT client's `socketDescriptor`).
    public func add(_ source: @escaping @Sendable () -> Int32?) {
        sources.withLock { $0.append(source) }
    }

    /// The descriptors now.
    func descriptors() -> Set<Int32> {
        Set(sources.withLock { $0 }.compactMap { $0() })
    }
}

/// The sockets exchanges have taken, process-wide (as the descriptor table is): an exchange takes a
/// socket only when it is the one candidate that no other exchange holds.
final class PeerSocketClaims: Sendable {
    static let shared = PeerSocketClaims()
    private let held = Mutex(Set<UInt64>())

    /// The one socket of `candidates` not held, now held; nil when none or several.
    func claim(_ candidates: Set<PeerSocket>) -> PeerSocket? {
        held.withLock { held in
            let free = candidates.filter { !held.contains($0.inode) }
            guard free.count == 1, let socket = free.first else { return nil }
            held.insert(socket.inode)
            return socket
        }
    }

    func release(_ socket: PeerSocket) {
        _ = held.withLock { $0.remove(socket.inode) }
    }

    /// Sockets held now (tests).
    var count: Int { held.withLock { $0.count } }
}
