import Codecs
import RTScheduler
import Synchronization
import Transports

extension SampleTag {
    /// GGA: latitude°, longitude°, altitude m, fix quality, satellites, HDOP, UTC s.
    public static let gnssFix: UInt32 = 10
    /// RMC: speed m/s, course°, valid (1/0), latitude°, longitude°, UTC s.
    public static let gnssVelocity: UInt32 = 11
    /// HDT: heading° true.
    public static let heading: UInt32 = 12
    /// key=value lines: the configured keys' values in order (NaN where a key was absent).
    public static let keyValues: UInt32 = 20
}

/// Line-based serial sensors turned into events: NMEA 0183 receivers (GGA, RMC, HDT) and
/// key=value sketches. Runs on the serial reader's thread; posts `.values` payloads (tags above)
/// to one source with the arrival instant as release. These decoders build strings, so they
/// allocate: they are meant for low-rate devices (GNSS at 1–20 Hz); fast sensors use frames.
public final class LineSensorInput: Sendable {
    public enum Format: Sendable { case nmea, keyValue(keys: [String]) }

    public let format: Format
    public let source: SourceHandle
    public let posted = Atomic<UInt64>(0)
    public let refused = Atomic<UInt64>(0)
    public let unknownKeys = Atomic<UInt64>(0)

    final class State: @unchecked Sendable {
        // Touched only by the reader thread that calls `feed`.
        var nmea = NMEALineDecoder()
        var kv = KeyValueLineDecoder()
    }
    private let state = State()

    public init(format: Format, source: SourceHandle) {
        if case .keyValue(let keys) = format {
            precondition(keys.count <= SampleValues.capacity, "at most \(SampleValues.capacity) keys per line")
        }
        self.format = format
        self.source = source
    }

    public var rejectedLines: Int {
        switch format {
        case .nmea: state.nmea.rejectedLines
        case .keyValue: state.kv.rejectedLines
        }
    }

    public func feed(_ bytes: UnsafeRawBufferPointer, arrival: Int64) {
        let release = Instant(nanoseconds: arrival)
        switch format {
        case .nmea:
            state.nmea.feed(bytes) { sentence in
                switch sentence {
                case .gga(let g):
                    post(SampleValues(tag: SampleTag.gnssFix, values: [
                        g.latitude ?? .nan, g.longitude ?? .nan, g.altitude ?? .nan, Double(g.fixQuality),
                        Double(g.satellites ?? 0), g.hdop ?? .nan, g.utcSeconds ?? .nan]), release)
                case .rmc(let r):
                    post(SampleValues(tag: SampleTag.gnssVelocity, values: [
                        r.speed ?? .nan, r.course ?? .nan, r.valid ? 1 : 0, r.latitude ?? .nan, r.longitude ?? .nan,
                        r.utcSeconds ?? .nan]), release)
                case .hdt(let h):
                    post(SampleValues(tag: SampleTag.heading, values: [h.heading]), release)
                case .unsupported:
                    break
                }
            }
        case .keyValue(let keys):
            state.kv.feed(bytes) { pairs in
                var values = SampleValues(tag: SampleTag.keyValues, count: keys.count)
                for i in 0..<keys.count { values[i] = .nan }
                for (key, value) in pairs {
                    if let i = keys.firstIndex(of: key) { values[i] = value } else { unknownKeys.add(1, ordering: .relaxed) }
                }
                post(values, release)
            }
        }
    }

    private func post(_ values: SampleValues, _ release: Instant) {
        if source.post(.values(values), release: release).wasAccepted {
            posted.add(1, ordering: .relaxed)
        } else {
            refused.add(1, ordering: .relaxed)
        }
    }
}
