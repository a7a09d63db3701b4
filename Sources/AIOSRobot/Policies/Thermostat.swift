/// A two-point thermostat with a fan for overshoot: heater on below `setpoint − band`, off above
/// `setpoint + band`, unchanged in between; fan duty rises linearly from 0 at `setpoint + fanStart`
/// to 1 at `setpoint + fanFull`. It asks for what it wants every cycle; the guard's discrete limits
/// (minimum on/off times, switches per minute) decide when a change may actually happen, which is
/// how a compressor or a heater relay is protected from a chattering controller.
public struct Thermostat: Sendable, Equatable {
    public struct Parameters: Sendable, Equatable {
        public var setpoint = 35.0
        public var band = 0.5
        public var fanStart = 1.5
        public var fanFull = 4.0
        public init() {}
    }

    public let parameters: Parameters
    public private(set) var heating = false

    public init(parameters: Parameters = Parameters()) { self.parameters = parameters }

    /// Heater state (0 off, 1 on) and fan duty for a temperature (°C); NaN (no reading) asks for off.
    public mutating func step(temperature t: Double) -> (heater: Int, fan: Double) {
        let p = parameters
        guard t.isFinite else {
            heating = false
            return (0, 0)
        }
        if t < p.setpoint - p.band { heating = true }
        if t > p.setpoint + p.band { heating = false }
        let excess = t - p.setpoint - p.fanStart
        let fan = min(1, max(0, excess / (p.fanFull - p.fanStart)))
        return (heating ? 1 : 0, fan)
    }
}
