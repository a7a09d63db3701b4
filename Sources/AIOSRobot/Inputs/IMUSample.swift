import Codecs
import RTScheduler

/// Tags of the sample payloads the runtime posts (`SampleValues.tag`).
public enum SampleTag {
    public static let imu: UInt32 = 1
    public static let wheelEncoders: UInt32 = 2
    public static let range: UInt32 = 3
}

/// An IMU sample in SI units (REP 103 axes): acceleration m/s², angular rate rad/s, magnetic
/// field tesla, temperature °C, the device's own timestamp beside the arrival instant.
public struct IMUSample: Sendable, Equatable {
    public var accel: SIMD3<Double>
    public var gyro: SIMD3<Double>
    public var magnetometer: SIMD3<Double>?
    public var temperature: Double?
    public var deviceTimeMicros: UInt32

    public init(_ m: IMUSampleMessage) {
        accel = SIMD3(Double(m.accel.x), Double(m.accel.y), Double(m.accel.z))
        gyro = SIMD3(Double(m.gyro.x), Double(m.gyro.y), Double(m.gyro.z))
        magnetometer = m.magnetometer.map { SIMD3(Double($0.x), Double($0.y), Double($0.z)) }
        temperature = m.temperature.map(Double.init)
        deviceTimeMicros = m.deviceTimeMicros
    }

    /// Packed into an event payload without allocating: 11 doubles (NaN where absent).
    public var payload: Payload {
        var v = SampleValues(tag: SampleTag.imu, count: 11)
        for i in 0..<3 {
            v[i] = accel[i]
            v[3 + i] = gyro[i]
            v[6 + i] = magnetometer?[i] ?? .nan
        }
        v[9] = temperature ?? .nan
        v[10] = Double(deviceTimeMicros)
        return .values(v)
    }

    public init?(payload: Payload) {
        guard case .values(let v) = payload, v.tag == SampleTag.imu, v.count == 11 else { return nil }
        accel = SIMD3(v[0], v[1], v[2])
        gyro = SIMD3(v[3], v[4], v[5])
        magnetometer = v[6].isNaN ? nil : SIMD3(v[6], v[7], v[8])
        temperature = v[9].isNaN ? nil : v[9]
        deviceTimeMicros = UInt32(clamping: Int64(v[10]))
    }
}

/// Watches a sensor's rate from its device timestamps: observed Hz (smoothed) and gaps (a
/// sample later than `gapFactor` expected periods). Device time is used so that USB or scheduler
/// jitter on the host does not look like sensor trouble; a wrapped 32-bit microsecond counter is
/// handled.
public struct RateMonitor: Sendable, Equatable {
    public let expectedHz: Double
    public let gapFactor: Double
    public private(set) var observedHz: Double = 0
    public private(set) var samples = 0
    public private(set) var gaps = 0
    public private(set) var longestGapMicros: UInt32 = 0
    private var last: UInt32?

    public init(expectedHz: Double, gapFactor: Double = 1.5) {
        self.expectedHz = expectedHz
        self.gapFactor = gapFactor
    }

    /// Returns true when this sample ends a gap.
    @discardableResult
    public mutating func note(deviceTimeMicros t: UInt32) -> Bool {
        samples += 1
        defer { last = t }
        guard let last else { return false }
        let delta = t &- last  // wraps correctly across the 32-bit rollover
        guard delta > 0 else { return false }
        let hz = 1e6 / Double(delta)
        observedHz = observedHz == 0 ? hz : observedHz + (hz - observedHz) * 0.1
        if Double(delta) > gapFactor * 1e6 / expectedHz {
            gaps += 1
            longestGapMicros = max(longestGapMicros, delta)
            return true
        }
        return false
    }
}
