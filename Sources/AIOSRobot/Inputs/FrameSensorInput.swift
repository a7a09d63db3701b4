import Codecs
import RTScheduler
import Synchronization
import Transports

/// A serial sensor speaking robotd frames (IMU, wheel encoders, range) turned into deadline-tagged
/// events: it runs on the serial reader's thread, decodes without allocating, stamps each sample
/// with its arrival instant and posts it to the scheduler source for that kind. The source's
/// subscription gives priority and deadline (relative to arrival).
public final class FrameSensorInput: Sendable {
    public struct Sources: Sendable {
        public var imu: SourceHandle?
        public var wheelEncoders: SourceHandle?
        public var range: SourceHandle?
        public init(imu: SourceHandle? = nil, wheelEncoders: SourceHandle? = nil, range: SourceHandle? = nil) {
            self.imu = imu
            self.wheelEncoders = wheelEncoders
            self.range = range
        }
    }

    public final class Counters: Sendable {
        public let posted = Atomic<UInt64>(0)
        public let refused = Atomic<UInt64>(0)
        public let malformed = Atomic<UInt64>(0)
        public let unrouted = Atomic<UInt64>(0)
        /// Arrival (ns) of the last well-formed frame of any kind, heartbeats included: the
        /// controller's sign of life (0: none yet).
        public let lastFrameAt = Atomic<Int64>(0)
    }

    final class DecoderState: @unchecked Sendable {
        // Touched only by the one reader thread that calls `feed`.
        var decoder = FrameDecoder()
        var imuRate: RateMonitor
        init(expectedIMUHz: Double) { imuRate = RateMonitor(expectedHz: expectedIMUHz) }
    }

    public let sources: Sources
    public let counters = Counters()
    private let state: DecoderState
    private let rate: Mutex<RateMonitor>

    /// The link the guard watches, told of every complete frame (nil: none).
    private let link: InputLink?

    public init(sources: Sources, expectedIMUHz: Double = 100, link: InputLink? = nil) {
        self.sources = sources
        self.link = link
        state = DecoderState(expectedIMUHz: expectedIMUHz)
        rate = Mutex(RateMonitor(expectedHz: expectedIMUHz))
    }

    /// Rate statistics of the IMU stream (copied; any thread).
    public var imuRate: RateMonitor { rate.withLock { $0 } }
    public var framesRejected: Int { state.decoder.framesRejected }

    /// Call from the reader thread with each chunk and its CLOCK_MONOTONIC arrival (ns).
    public func feed(_ bytes: UnsafeRawBufferPointer, arrival: Int64) {
        let release = Instant(nanoseconds: arrival)
        state.decoder.feed(bytes) { view in
            counters.lastFrameAt.store(arrival, ordering: .releasing)
            link?.noteFrame(at: arrival)
            switch Frame.MessageType(rawValue: view.type) {
            case .heartbeat:
                break
            case .imuSample:
                guard let message = IMUSampleMessage(payload: view.payload) else { counters.malformed.add(1, ordering: .relaxed); return }
                state.imuRate.note(deviceTimeMicros: message.deviceTimeMicros)
                post(IMUSample(message).payload, to: sources.imu, release: release)
            case .wheelEncoders:
                guard let m = WheelEncodersMessage(payload: view.payload) else { counters.malformed.add(1, ordering: .relaxed); return }
                var v = SampleValues(tag: SampleTag.wheelEncoders, count: 3)
                v[0] = Double(m.leftTicks); v[1] = Double(m.rightTicks); v[2] = Double(m.deviceTimeMicros)
                post(.values(v), to: sources.wheelEncoders, release: release)
            case .range:
                guard let m = RangeMessage(payload: view.payload) else { counters.malformed.add(1, ordering: .relaxed); return }
                var v = SampleValues(tag: SampleTag.range, count: 3)
                v[0] = m.status == 0 ? Double(m.range) : .nan; v[1] = Double(m.status); v[2] = Double(m.deviceTimeMicros)
                post(.values(v), to: sources.range, release: release)
            default:
                counters.unrouted.add(1, ordering: .relaxed)
            }
        }
        let snapshot = state.imuRate
        rate.withLock { $0 = snapshot }
    }

    private func post(_ payload: Payload, to source: SourceHandle?, release: Instant) {
        guard let source else { counters.unrouted.add(1, ordering: .relaxed); return }
        if source.post(payload, release: release).wasAccepted {
            counters.posted.add(1, ordering: .relaxed)
        } else {
            counters.refused.add(1, ordering: .relaxed)
        }
    }
}
