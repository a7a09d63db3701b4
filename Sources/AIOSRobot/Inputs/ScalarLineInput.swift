import Codecs
import RTScheduler
import Synchronization

/// Line protocols turned into one scalar per sensor: NMEA 0183 (`heading` from HDT in degrees,
/// `speed` from RMC (m/s), `fix_quality`, `hdop`, `satellites` from GGA) or key=value lines (a
/// key per sensor). A value a sentence does not carry is not posted (the sensor ages toward stale).
public final class ScalarLineInput: Sendable {
    public enum Format: Sendable, Equatable { case nmea, keyValue }

    public let format: Format
    /// (message or key, the sensor's source).
    let routes: [(name: String, source: SourceHandle)]
    private let link: InputLink?
    public let posted = Atomic<UInt64>(0)
    public let refused = Atomic<UInt64>(0)
    public let unknownKeys = Atomic<UInt64>(0)

    final class State: @unchecked Sendable {
        // Touched only by the reader thread that calls `feed`.
        var nmea = NMEALineDecoder()
        var kv = KeyValueLineDecoder()
    }
    private let state = State()

    public init(format: Format, routes: [(name: String, source: SourceHandle)], link: InputLink? = nil) {
        self.format = format
        self.routes = routes
        self.link = link
    }

    public var rejectedLines: Int {
        switch format {
        case .nmea: state.nmea.rejectedLines
        case .keyValue: state.kv.rejectedLines
        }
    }

    /// Reader thread: a chunk of bytes and its CLOCK_MONOTONIC arrival (ns).
    public func feed(_ bytes: UnsafeRawBufferPointer, arrival: Int64) {
        let release = Instant(nanoseconds: arrival)
        switch format {
        case .nmea:
            state.nmea.feed(bytes) { sentence in
                link?.noteFrame(at: arrival)
                switch sentence {
                case .gga(let g):
                    post("fix_quality", Double(g.fixQuality), release)
                    if let h = g.hdop { post("hdop", h, release) }
                    if let n = g.satellites { post("satellites", Double(n), release) }
                case .rmc(let r):
                    // Already m/s (the codec converts); a fix the receiver marks invalid carries no speed.
                    if r.valid, let speed = r.speed { post("speed", speed, release) }
                case .hdt(let h):
                    post("heading", h.heading, release)
                case .unsupported:
                    break
                }
            }
        case .keyValue:
            state.kv.feed(bytes) { pairs in
                link?.noteFrame(at: arrival)
                for (key, value) in pairs where !post(key, value, release) { unknownKeys.add(1, ordering: .relaxed) }
            }
        }
    }

    @discardableResult
    private func post(_ name: String, _ value: Double, _ release: Instant) -> Bool {
        guard let route = routes.first(where: { $0.name == name }) else { return false }
        if route.source.post(.scalar(value), release: release).wasAccepted {
            posted.add(1, ordering: .relaxed)
        } else {
            refused.add(1, ordering: .relaxed)
        }
        return true
    }
}
