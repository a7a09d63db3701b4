import RTScheduler
import RobotConfig
import SafetyGuard

/// The guard's configuration from a robot's file: channels with their limits (ros2_control names
/// mapped by interface), required sensors, interlocks, workspace, e-stop reactions. A value that
/// cannot be mapped is an error naming it — the validator should have caught it first.
extension GuardConfiguration {
    public init(robot: RobotConfiguration) throws(KindError) {
        var channels = try robot.channels.map { c throws(KindError) in try ChannelConfiguration(c) }
        // The limiter credits at most `maxStepInterval` between two commands; a channel commanded
        // once a period (a 1 s thermostat) must be credited its period, or its rate limit would
        // act ten times tighter than configured.
        for (i, c) in robot.channels.enumerated() {
            // The fastest: a slow policy's credit must not let a fast one jump after a pause.
            let periods = robot.policies.filter { $0.channels.contains(c.name) }.compactMap(\.periodMs)
            if let fastest = periods.min() { channels[i].maxStepInterval = max(channels[i].maxStepInterval, fastest / 1000) }
        }
        var sensors: [RequiredSensor] = []
        var interlocks: [ValueInterlock] = []
        for s in robot.sensors {
            guard s.name != RobotRuntime.estopDeviceSensor else {
                throw KindError("sensor \(s.name): the name is reserved for the e-stop devices' keep-alive")
            }
            // With a workspace, the pose comes from the encoders: their silence must stop the robot
            // (a frozen pose would let it leave the workspace unseen).
            if robot.workspace != nil, robot.odometry?.encoders == s.name, s.reaction != "stop" {
                throw KindError("sensor \(s.name): it feeds the odometry that the workspace is checked on, so its reaction must be stop")
            }
            var range: ClosedRange<Double>?
            if let r = s.validRange {
                guard r.count == 2, r[0] <= r[1] else { throw KindError("sensor \(s.name): valid_range must be [min, max]") }
                range = r[0]...r[1]
            }
            sensors.append(RequiredSensor(name: s.name, maxAge: .milliseconds(s.maxAgeMs),
                                          reaction: try Reaction(s.reaction, category: s.stopCategory, owner: "sensor \(s.name)"),
                                          validRange: range))
            for i in s.interlocks ?? [] {
                interlocks.append(ValueInterlock(sensor: s.name, min: i.min, max: i.max, channels: i.channels))
            }
        }
        var reactions: [FaultKind: Reaction] = [:]
        switch robot.estop {
        case .none:
            break
        case .configured(let e):
            let category = try StopCategory(e.category, owner: "estop")
            guard category != .two else { throw KindError("estop: category must be 0 or 1 (IEC 60204-1), not 2") }
            if !e.inputs.isEmpty {
                reactions[.emergencyStopInput] = .stop(category)
                let lost = try StopCategory(e.deviceLostCategory ?? 1, owner: "estop.device_lost_category")
                reactions[.estopDeviceLost] = .stop(lost)
                if let liveness = e.livenessMs {
                    sensors.append(RequiredSensor(name: RobotRuntime.estopDeviceSensor, maxAge: .milliseconds(liveness), reaction: .stop(lost)))
                }
            }
            if let remote = e.remote {
                // The topics are compared exactly: a wildcard would subscribe and never match.
                let topics = robot.inboundTopics.map { [$0.stop, $0.resetBase] } ?? []
                for topic in topics where topic.contains("+") || topic.contains("#") {
                    throw KindError("estop.remote: \(topic): a stop or reset topic names one topic, no + or # wildcards")
                }
                let c = try StopCategory(remote.category, owner: "estop.remote")
                guard c != .two else { throw KindError("estop.remote: category must be 0 or 1, not 2") }
                reactions[.remoteStop] = .stop(c)
            }
        }
        var workspace: Workspace?
        if let w = robot.workspace {
            var polygon: [Workspace.Point]?
            if let p = w.polygon {
                polygon = try p.map { xy throws(KindError) in
                    guard xy.count == 2 else { throw KindError("workspace.polygon: each point is [x, y]") }
                    return Workspace.Point(x: xy[0], y: xy[1])
                }
            }
            let center = w.center.map { Workspace.Point(x: $0.first ?? 0, y: $0.count > 1 ? $0[1] : 0) } ?? Workspace.Point(x: 0, y: 0)
            var ws = Workspace(polygon: polygon, radius: w.radius, center: center, warnDistance: w.warnMargin,
                               stopDistance: w.stopMargin, stopCategory: try StopCategory(w.stopCategory, owner: "workspace"))
            if let o = robot.odometry {
                ws.kinematics = DiffDriveKinematics(leftChannel: o.leftWheel, rightChannel: o.rightWheel, wheelRadius: o.wheelRadius)
            }
            workspace = ws
        }
        self.init(channels: channels, sensors: sensors, workspace: workspace, reactions: reactions)
        self.interlocks = interlocks
        startupTimeout = .milliseconds(robot.safety.startupTimeoutMs)
        startLatched = robot.safety.startLatched
        maxTickAge = .milliseconds(robot.safety.guardPeriodMs * 3)
    }
}

extension ChannelConfiguration {
    init(_ c: ChannelSettings) throws(KindError) {
        let l = c.limits
        let limits: ChannelLimits
        switch c.kind {
        case "discrete":
            limits = .discrete(DiscreteLimits(allowedStates: l.states ?? [0, 1], minOnTime: l.minOnTimeS.map { .milliseconds($0 * 1000) },
                                              minOffTime: l.minOffTimeS.map { .milliseconds($0 * 1000) },
                                              maxSwitchesPerMinute: l.maxSwitchesPerMinute))
        case "continuous":
            limits = .continuous(try ContinuousLimits(l, interface: c.interface ?? "velocity", owner: "channel \(c.name)"))
        default:
            throw KindError("channel \(c.name): kind must be continuous or discrete, not \(c.kind)")
        }
        var origins: [CommandOrigin: ChannelLimits] = [:]
        for (name, envelope) in c.envelopes ?? [:] {
            guard let origin = CommandOrigin.allConfigurable.first(where: { $0.description == name }) else {
                throw KindError("channel \(c.name): envelopes are per origin (policy, teleop, planner), not \(name)")
            }
            switch limits {
            case .discrete(let base):
                // Every discrete rule of the envelope narrows the channel's (states, minimum on/off
                // times, switch rate); an envelope cannot widen any of them.
                var d = DiscreteLimits(minOnTime: envelope.minOnTimeS.map { .milliseconds($0 * 1000) },
                                       minOffTime: envelope.minOffTimeS.map { .milliseconds($0 * 1000) },
                                       maxSwitchesPerMinute: envelope.maxSwitchesPerMinute)
                d.allowedStates = envelope.states.map { DiscreteLimits(allowedStates: $0).allowedStates } ?? base.allowedStates
                origins[origin] = .discrete(base.tightened(by: d))
            case .continuous(let base):
                origins[origin] = .continuous(base.tightened(by: try ContinuousLimits(envelope, interface: c.interface ?? "velocity",
                                                                                     owner: "channel \(c.name).envelopes.\(name)")))
            }
        }
        let safe: CommandValue = c.kind == "discrete" ? .discrete(Int(c.safeValue)) : .continuous(c.safeValue)
        self.init(name: c.name, limits: limits, originLimits: origins, safeValue: safe,
                  watchdogTimeout: c.watchdogTimeoutMs.map { .milliseconds($0) }, stopRate: c.stopRate,
                  isMotion: c.motion ?? (c.kind == "continuous"),
                  motionMonitor: c.motionMonitor.map { MotionMonitor(tolerance: $0.tolerance, time: .milliseconds($0.timeMs)) },
                  stopCategory: try StopCategory(c.stopCategory, owner: "channel \(c.name)"))
    }
}

extension ContinuousLimits {
    /// ros2_control's joint_limits, read for what the channel's value is.
    init(_ l: LimitSettings, interface: String, owner: String) throws(KindError) {
        func on(_ has: Bool?, _ v: Double?) -> Double? { has == false ? nil : v }
        let velocity = on(l.hasVelocityLimits, l.maxVelocity)
        let acceleration = on(l.hasAccelerationLimits, l.maxAcceleration)
        let deceleration = on(l.hasDecelerationLimits, l.maxDeceleration)
        let jerk = on(l.hasJerkLimits, l.maxJerk)
        switch interface {
        case "velocity":
            self = .velocity(maxVelocity: velocity, maxAcceleration: acceleration, maxDeceleration: deceleration, maxJerk: jerk)
        case "position":
            let hasPosition = l.hasPositionLimits != false
            self = .position(minPosition: hasPosition ? l.minPosition : nil, maxPosition: hasPosition ? l.maxPosition : nil,
                             maxVelocity: velocity, maxAcceleration: acceleration, maxJerk: jerk)
        case "effort":
            self = .effort(maxEffort: on(l.hasEffortLimits, l.maxEffort))
        case "duty":
            self = .duty(min: l.minDuty ?? 0, max: l.maxDuty ?? 1, maxRate: l.maxDutyRate)
        default:
            throw KindError("\(owner): interface must be velocity, position, effort or duty, not \(interface)")
        }
    }
}

extension StopCategory {
    init(_ value: Int, owner: String) throws(KindError) {
        guard let c = StopCategory(rawValue: value) else { throw KindError("\(owner): stop category must be 0, 1 or 2, not \(value)") }
        self = c
    }
}

extension Reaction {
    init(_ word: String, category: Int?, owner: String) throws(KindError) {
        switch word {
        case "warn": self = .warn
        case "hold": self = .hold
        case "stop": self = .stop(try StopCategory(category ?? 1, owner: owner))
        default: throw KindError("\(owner): reaction must be warn, hold or stop, not \(word)")
        }
    }
}

extension CommandOrigin {
    /// The origins an envelope may name (the guard's own commands are never enveloped).
    static let allConfigurable: [CommandOrigin] = [.policy, .teleop, .planner]
}
