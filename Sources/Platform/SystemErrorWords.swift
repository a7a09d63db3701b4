import Glibc

/// errno values in the words a person reads in a log line: "connection refused", "no such
/// file", "permission denied". One table for every layer (serial ports, input devices, MQTT, the
/// real-time setup), so the same cause reads the same everywhere. Unlisted codes fall back to
/// strerror(3), lower-cased, with the number.
public enum SystemErrorWords {
    public static func text(_ code: Int32) -> String {
        if let words = words(code) { return words }
        guard let text = strerror(code) else { return "error \(code)" }
        let words = String(cString: text)
        return (words.first.map { $0.lowercased() + words.dropFirst() } ?? words) + " (errno \(code))"
    }

    private static func words(_ code: Int32) -> String? {
        switch code {
        case ENOENT, ENOTDIR: "no such file"
        case EACCES, EPERM: "permission denied"
        case EBUSY: "busy (another program has it open)"
        case ENXIO, ENODEV: "no such device"
        case EIO: "input/output error (device unplugged?)"
        case EISDIR: "is a directory"
        case ENOTTY: "not a terminal"
        case ECONNREFUSED: "connection refused"
        case EHOSTUNREACH: "no route to host"
        case ENETUNREACH: "network unreachable"
        case ENETDOWN: "network is down"
        case ETIMEDOUT: "timed out"
        case ECONNRESET: "connection reset by the peer"
        case EADDRNOTAVAIL: "address not available on this machine"
        case EADDRINUSE: "address already in use"
        case EINVAL: "invalid argument"
        case ENOMEM: "out of memory"
        case EAGAIN: "temporarily unavailable"
        default: nil
        }
    }
}
