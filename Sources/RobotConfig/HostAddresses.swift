import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The addresses one host stands for, for `robotd check` to tell whether two endpoints of the file
/// are one peer: IPv4 and IPv6 addresses as numbers, an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`)
/// as its IPv4 one — as robotd compares a socket's peer with a URL's host at run time
/// (PlannerBackends' `PeerAddress`, which RobotConfig does not link).
///
/// A literal (`127.0.0.1`, `::1`, `[::1]`) is parsed, never looked up. A name goes to getaddrinfo
/// on a thread of its own, waited for at most `timeoutMilliseconds`: a resolver that does not
/// answer in time leaves the name unresolved rather than the check waiting on it (the lookup ends
/// by itself later, its answer unread).
enum HostAddresses {
    /// Every address `host` resolves to; nil when it resolves to none, not at all, or not in time
    /// — or when it is a name and `lookUpNames` is off (only literals are parsed then).
    static func resolve(_ host: String, lookUpNames: Bool = true, timeoutMilliseconds: Int = 2000) -> Set<[UInt8]>? {
        var name = host
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        guard !name.isEmpty, !name.contains("\0") else { return nil }
        if let literal = lookUp(name, numericOnly: true) { return literal }
        guard lookUpNames else { return nil }
        let answer = Answer()
        DispatchQueue.global(qos: .utility).async { [name] in answer.set(lookUp(name, numericOnly: false)) }
        return answer.wait(milliseconds: timeoutMilliseconds)
    }

    /// getaddrinfo's IPv4 and IPv6 addresses for `name`; nil when there are none. `numericOnly`:
    /// literals only (AI_NUMERICHOST), so that no name reaches a resolver.
    private static func lookUp(_ name: String, numericOnly: Bool) -> Set<[UInt8]>? {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = numericOnly ? AI_NUMERICHOST : 0
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &list) == 0 else { return nil }
        defer { freeaddrinfo(list) }
        var found = Set<[UInt8]>()
        var next = list
        while let entry = next {
            next = entry.pointee.ai_next
            guard let address = entry.pointee.ai_addr, Int(entry.pointee.ai_addrlen) <= MemoryLayout<sockaddr_storage>.size else { continue }
            var storage = sockaddr_storage()
            withUnsafeMutableBytes(of: &storage) { target in
                target.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(entry.pointee.ai_addrlen)))
            }
            switch Int32(storage.ss_family) {
            case AF_INET:
                let v4 = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
                found.insert(withUnsafeBytes(of: v4.sin_addr) { Array($0) })
            case AF_INET6:
                let v6 = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
                let bytes = withUnsafeBytes(of: v6.sin6_addr) { Array($0) }
                let mapped = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
                found.insert(mapped ? Array(bytes[12..<16]) : bytes)
            default:
                continue
            }
        }
        return found.isEmpty ? nil : found
    }

    /// One lookup's answer, handed from its thread to the waiting one; a late answer is dropped
    /// with this object.
    private final class Answer: Sendable {
        private let addresses = Mutex<Set<[UInt8]>?>(nil)
        private let done = DispatchSemaphore(value: 0)

        func set(_ value: Set<[UInt8]>?) {
            addresses.withLock { $0 = value }
            done.signal()
        }

        func wait(milliseconds: Int) -> Set<[UInt8]>? {
            guard done.wait(timeout: .now() + .milliseconds(milliseconds)) == .success else { return nil }
            return addresses.withLock { $0 }
        }
    }
}
