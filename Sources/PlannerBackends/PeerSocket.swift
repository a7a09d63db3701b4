import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The TCP socket under one HTTP exchange, found from Linux's /proc, so that an exchange that ends
/// early can end its connection at once.
///
/// Why: FoundationNetworking's `cancel()` and `invalidateAndCancel()` both begin with a `sync` on
/// the session's work queue, where libcurl's socket source runs; a server flooding the connection
/// keeps that queue busy (each 16 KiB read queues its delivery, a new timeout timer and a progress
/// update), so the cancellation waits its turn for seconds while the body is read on — measured
/// 0.1–8.6 s at loopback speed, from the teardown queue or from another queue alike, against
/// 7–42 ms once the socket is reset (see `reset`). URLSession gives no handle on its socket, so the exchange notes this process's
/// sockets to the server's port before it starts and takes the one new socket when the response
/// begins. A socket taken is held in `PeerSocketClaims` until its teardown ran, so that two exchanges
/// to the same port never take the same one; when more than one new socket is there, none is taken
/// and the exchange ends by `cancel()` alone, as before.
struct PeerSocket: Sendable, Hashable {
    var fd: Int32
    var inode: UInt64

    /// The inodes of the established TCP sockets (of any process in this network namespace) whose
    /// remote port is `port`, IPv4 and IPv6: what an exchange notes before it starts (no descriptor
    /// is looked at, so it costs one read of each table).
    static func inodes(toPort port: Int) -> Set<UInt64> {
        var inodes = Set<UInt64>()
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = readWhole(table) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
                guard fields.count > 9, fields[3] == "01" else { continue }
                guard let colon = fields[2].lastIndex(of: ":"),
                      Int(fields[2][fields[2].index(after: colon)...], radix: 16) == port,
                      let inode = UInt64(fields[9]), inode != 0 else { continue }
                inodes.insert(inode)
            }
        }
        return inodes
    }

    /// A /proc file to its end. Not `String(contentsOfFile:)`: a /proc file says its size is 0, and
    /// that read one page of the table (27 sockets of a busy machine's hundreds).
    private static func readWhole(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// This process's established TCP sockets whose remote port is `port`.
    static func connected(toPort port: Int) -> Set<PeerSocket> {
        let inodes = inodes(toPort: port)
        guard !inodes.isEmpty, let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return [] }
        var found = Set<PeerSocket>()
        for name in names {
            guard let fd = Int32(name),
                  let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + name),
                  link.hasPrefix("socket:["), link.hasSuffix("]"),
                  let inode = UInt64(link.dropFirst("socket:[".count).dropLast()), inodes.contains(inode) else { continue }
            found.insert(PeerSocket(fd: fd, inode: inode))
        }
        return found
    }

    /// Resets the connection, if `fd` is still this socket: `connect` with `AF_UNSPEC` disconnects a
    /// TCP socket at once (Linux sends the peer a reset) without closing the descriptor, which stays
    /// libcurl's; libcurl then reads the end of the stream. A `shutdown` alone is not enough: when
    /// libcurl had read everything, the peer stayed blocked on a zero window for good (seen: a
    /// flooding peer in CLOSE-WAIT with 4 MB unsent). The check and the reset act on a duplicate of
    /// the descriptor, so a number closed and reused meanwhile by someone else is never touched
    /// (its inode differs).
    @discardableResult
    func reset() -> Bool {
        let copy = dup(fd)
        guard copy >= 0 else { return false }
        defer { close(copy) }
        var status = stat()
        guard fstat(copy, &status) == 0, (status.st_mode & S_IFMT) == S_IFSOCK, UInt64(status.st_ino) == inode else { return false }
        var unspecified = sockaddr()
        unspecified.sa_family = sa_family_t(AF_UNSPEC)
        if connect(copy, &unspecified, socklen_t(MemoryLayout<sockaddr>.size)) == 0 { return true }
        // Not disconnected: a reset when libcurl closes it, and the end of the stream now.
        var abortive = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(copy, SOL_SOCKET, SO_LINGER, &abortive, socklen_t(MemoryLayout<linger>.size))
        return shutdown(copy, Int32(SHUT_RDWR)) == 0
    }
}

/// The sockets exchanges have taken, process-wide (as the descriptor table is): an exchange takes a
/// socket only when it is the one new socket to its port that no other exchange holds.
final class PeerSocketClaims: Sendable {
    static let shared = PeerSocketClaims()
    private let held = Mutex(Set<UInt64>())

    /// The one socket of `now` not in `before` and not held, now held; nil when none or several.
    func claim(now: Set<PeerSocket>, before: Set<UInt64>) -> PeerSocket? {
        held.withLock { held in
            let candidates = now.filter { !before.contains($0.inode) && !held.contains($0.inode) }
            guard candidates.count == 1, let socket = candidates.first else { return nil }
            held.insert(socket.inode)
            return socket
        }
    }

    func release(_ socket: PeerSocket) {
        _ = held.withLock { $0.remove(socket.inode) }
    }
}
