import RTScheduler
import RobotConfig
import SafetyGuard

/// `thermostat`: a heater (discrete 0/1) and optionally a fan (duty) from one temperature sensor.
/// - `hysteresis`: heater on below setpoint − band, off above setpoint + band; the fan rises from
///   0 at setpoint + fan_start to 1 at setpoint + fan_full.
/// - `pid` with a fan: heat and trim. The heater is the coarse source, switched rarely (on below
///   setpoint − band; off only when the fan at full cannot hold the temperature below
///   setpoint + band), and a PID on the fan — the continuous actuator — holds the setpoint: a relay
///   with minimum on/off times cannot hold ±0.5 °C by itself, a fan can.
/// - `pid` without a fan: a PID demand (0…1) time-proportioned over `window_s`, each on and off
///   period at least the minimum on/off time (respected, not fought: a short period is skipped).
/// A missing reading (NaN) asks for the heater off and the fan at rest; integrators never wind up
/// beyond their output's range.
///
/// Plans (`set_temperature`, `hold`): a setpoint directive replaces the setpoint (its commands carry
/// the `planner` origin meanwhile); `none` brings back the configured one.
struct ThermostatPolicy: ControlPolicy {
    enum Mode: Sendable { case hysteresis, pid(kp: Double, ki: Double, kd: Double, window: Double) }
    let sensor: Int
    let configuredSetpoint: Double
    var setpoint: Double
    /// A plan set the setpoint.
    var planned = false
    /// The temperature at the last step (NaN: unknown), for the plan's progress.
    var lastTemperature = Double.nan
    let mode: Mode
    let band: Double
    let fanStart: Double
    let fanFull: Double
    let hasFan: Bool
    let minOn: Double
    let minOff: Double
    var heating = false
    var integral = 0.0
    var lastError: Double?
    var lastStep: Instant?
    /// Time-proportioning: when the current on or off period began.
    var periodStart: Instant?
    var origin: CommandOrigin { planned ? .planner : .policy }

    init(sensor: Int, setpoint: Double, mode: Mode, band: Double, fanStart: Double, fanFull: Double, hasFan: Bool, minOn: Double,
         minOff: Double) {
        self.sensor = sensor
        configuredSetpoint = setpoint
        self.setpoint = setpoint
        self.mode = mode
        self.band = band
        self.fanStart = fanStart
        self.fanFull = fanFull
        self.hasFan = hasFan
        self.minOn = minOn
        self.minOff = minOff
    }

    mutating func direct(_ directive: PlanDirective) {
        switch directive {
        case .setpoint(let value):
            setpoint = value
            planned = true
        case .none:
            setpoint = configuredSetpoint
            planned = false
        case .hold, .route:
            break  // a thermostat keeps its setpoint: holding is what it does
        }
    }

    /// °C from the setpoint; done within the band.
    var planReading: PlanReading {
        let remaining = abs(lastTemperature - setpoint)
        return PlanReading(remaining: remaining, done: remaining <= band)
    }

    mutating func step(_ world: World, now: Instant) -> ChannelValues? {
        let t = world.sensors[sensor]
        lastTemperature = t
        var out = ChannelValues(count: hasFan ? 2 : 1)
        guard t.isFinite else {
            heating = false
            integral = 0
            lastError = nil
            lastStep = nil
            periodStart = nil
            return out
        }
        let dt = lastStep.map { Double((now - $0).nanoseconds) / 1e9 } ?? 0
        lastStep = now
        switch mode {
        case .hysteresis:
            if t < setpoint - band { heating = true }
            if t > setpoint + band { heating = false }
            if hasFan { out[1] = max(0, min(1, (t - setpoint - fanStart) / (fanFull - fanStart))) }
        case .pid(let kp, let ki, let kd, let window):
            if hasFan {
                // The fan cools: its demand grows with the excess over the setpoint.
                let fan = pid(error: t - setpoint, dt: dt, kp: kp, ki: ki, kd: kd)
                if t < setpoint - band { heating = true }
                if t > setpoint + band && fan >= 1 { heating = false }
                out[1] = fan
            } else {
                let demand = pid(error: setpoint - t, dt: dt, kp: kp, ki: ki, kd: kd)
                heating = timeProportioned(demand: demand, window: window, now: now)
            }
        }
        out[0] = heating ? 1 : 0
        return out
    }

    /// A PID output clamped to 0…1; the integral only moves while that does not push the output
    /// further into saturation (anti-windup).
    private mutating func pid(error: Double, dt: Double, kp: Double, ki: Double, kd: Double) -> Double {
        let derivative = dt > 0 ? (error - (lastError ?? error)) / dt : 0
        lastError = error
        let candidate = integral + error * dt
        let raw = kp * error + ki * candidate + kd * derivative
        if (raw <= 1 || error < 0) && (raw >= 0 || error > 0) { integral = candidate }
        return max(0, min(1, kp * error + ki * integral + kd * derivative))
    }

    /// On for demand × window, off for the rest, each period at least its minimum (a short one is
    /// skipped rather than cut short: the relay is never asked to chatter).
    private mutating func timeProportioned(demand: Double, window: Double, now: Instant) -> Bool {
        let start = periodStart ?? now
        if periodStart == nil { periodStart = now }
        let elapsed = Double((now - start).nanoseconds) / 1e9
        var onTime = demand * window
        var offTime = window - onTime
        if onTime < minOn { onTime = 0; offTime = window }
        if offTime < minOff && onTime > 0 { offTime = 0; onTime = window }
        if heating {
            if offTime > 0 && elapsed >= max(onTime, minOn) {
                periodStart = now
                return false
            }
            return true
        }
        if onTime > 0 && elapsed >= max(offTime, minOff) {
            periodStart = now
            return true
        }
        return false
    }
}

enum ThermostatKind: PolicyKind {
    static let spec = KindSpec(kind: "thermostat", summary: "heater (and fan) from a temperature: hysteresis or PID with time-proportioning", fields: [
        FieldSpec("sensor", .string, required: true, help: "the temperature sensor (°C)", refersTo: .sensor),
        FieldSpec("setpoint", .number(-40...150), required: true, help: "°C"),
        FieldSpec("mode", .oneOf(["hysteresis", "pid"]), help: "default hysteresis"),
        FieldSpec("band", .number(0...50), help: "heater on below setpoint − band, off above setpoint + band (°C), default 0.5"),
        FieldSpec("fan_start", .number(0...100), help: "fan starts this far above the setpoint (°C), default 1.5"),
        FieldSpec("fan_full", .number(0...100), help: "fan at full duty this far above (°C), default 4"),
        FieldSpec("kp", .number(0...1000), help: "PID: proportional gain (1/°C), default 0.5"),
        FieldSpec("ki", .number(0...1000), help: "PID: integral gain (1/(°C·s)), default 0.02"),
        FieldSpec("kd", .number(0...1000), help: "PID: derivative gain (s/°C), default 0"),
        FieldSpec("window_s", .number(1...3600), help: "PID without a fan: time-proportioning window (s), default 60"),
        FieldSpec("interlock", .word("none"),
                  help: "`none` written out: no sensor interlock locks the heater off on over-temperature (a warning); without it one is required"),
    ])

    static func make(_ settings: PolicySettings, context: PolicyBuildContext) throws -> PolicyBehaviour {
        let s = context.settings(of: settings)
        guard (1...2).contains(settings.channels.count) else {
            throw KindError("policy \(settings.name): channels must be [heater] or [heater, fan]")
        }
        let heaterName = settings.channels[0]
        guard let heater = context.configuration.channels.first(where: { $0.name == heaterName }), heater.kind == "discrete" else {
            throw KindError("policy \(settings.name): its first channel (\(heaterName)) must be a discrete channel (the heater)")
        }
        let sensor = try context.sensor(try s.string("sensor"), for: settings)
        let mode: ThermostatPolicy.Mode
        switch try s.string("mode", default: "hysteresis") {
        case "pid":
            mode = .pid(kp: try s.number("kp", default: 0.5), ki: try s.number("ki", default: 0.02), kd: try s.number("kd", default: 0),
                        window: try s.number("window_s", default: 60))
        case "hysteresis": mode = .hysteresis
        case let other: throw KindError("policy \(settings.name): mode \(other) is not hysteresis or pid")
        }
        let fanStart = try s.number("fan_start", default: 1.5), fanFull = try s.number("fan_full", default: 4)
        guard fanFull > fanStart else { throw KindError("policy \(settings.name): fan_full must be above fan_start") }
        return .source(ThermostatPolicy(
            sensor: sensor, setpoint: try s.number("setpoint"), mode: mode, band: try s.number("band", default: 0.5),
            fanStart: fanStart, fanFull: fanFull,
            hasFan: settings.channels.count == 2,
            minOn: heater.limits.minOnTimeS ?? 0, minOff: heater.limits.minOffTimeS ?? 0))
    }
}
