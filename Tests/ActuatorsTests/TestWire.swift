import Codecs
import Foundation
import Glibc
import SafetyGuard
@testable import Actuators

// What the actuator tests share: a wire to read back what a back end wrote, two velocity motors,
// the clock and percentiles for timing figures.

func monotonicNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// A pipe whose read end is non-blocking, for reading back what a back end wrote.
final class Wire: Sendable {
    let read: Int32
    let write: Int32
    init() throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw POSIXError(.EMFILE) }
        read = fds[0]
        write = fds[1]
        _ = fcntl(read, F_SETFL, fcntl(read, F_GETFL) | O_NONBLOCK)
    }
    deinit {
        close(read)
        close(write)
    }

    func available() -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = Glibc.read(read, &chunk, chunk.count)
            if n <= 0 { break }
            out += chunk.prefix(n)
        }
        return out
    }

    /// The frames that have arrived so far.
    func frames() -> [(type: UInt8, motor: MotorCommandMessage?)] {
        var decoder = FrameDecoder()
        var out: [(UInt8, MotorCommandMessage?)] = []
        available().withUnsafeBytes { bytes in
            decoder.feed(bytes) { frame in out.append((frame.type, MotorCommandMessage(payload: frame.payload))) }
        }
        return out
    }
}

let twoMotors: [SerialFrameBackend.Mapping] = [
    .init(channel: ChannelID(index: 0), motor: 0, mode: .velocity),
    .init(channel: ChannelID(index: 1), motor: 1, mode: .velocity),
]

func percentile(_ values: [Int64], _ p: Double) -> Int64 {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}
