import Codecs
import Synchronization

public struct RoverSimulationConfig: Sendable, Equatable {
    public var parameters = RoverParameters()
    public var arena = Arena.standard
    public var start = Pose2D(x: -3.5, y: 0, yaw: 0)
    /// Physics integration step (ns). Sensors are sampled on step boundaries.
    public var physicsStep: Int64 = 1_000_000
    public var imuHz = 200.0
    public var encoderHz = 50.0
    public var rangeHz = 20.0
    public var heartbeatHz = 5.0
    public var seed: UInt64 = 1
    public var gyroNoise = 0.002
    public var accelNoise = 0.02
    public var rangeNoise = 0.003
    public var rangeMinimum = 0.05
    public var rangeMaximum = 4.0
    /// Half-angle of the range sensor's beam (an ultrasonic sensor's cone is 15–30°): the reading is
    /// the nearest return among rays spread over the cone.
    public var rangeConeHalfAngle = 0.26
    public var rangeRays = 5
    /// The motor driver's own command watchdog (ns).
    public var commandTimeout: Int64 = 500_000_000
    /// Host heartbeat timeout (ns): once the firmware has heard a host heartbeat, a silence longer
    /// than this de-energises both wheels and energising commands are refused until heartbeats
    /// resume. nil: heartbeats are not watched.
    public var hostHeartbeatTimeout: Int64? = 250_000_000
    /// Where the device's microsecond clock starts (set near 2³² to exercise the wrap).
    public var deviceClockStartMicros: UInt32 = 0
    /// Faults on simulated time. The rover applies its own kinds (range-, encoders-, imu-dead,
    /// serial-unplug, controller-silent, runaway) and reports every kind active in `activeFaults`,
    /// so that one snapshot is the simulator's ground truth.
    public var faults: [SimulatorFault] = []
    /// How fast a runaway wheel speeds up toward +maxWheelSpeed while energised (rad/s²).
    public var runawayAcceleration = 10.0
    public init() {}
}

/// What the simulation looks like at one instant (JSON for `robotd sim`, values for tests).
public struct RoverSnapshot: Sendable, Equatable, Codable {
    public var time: Int64
    public var pose: Pose2D
    public var linearVelocity: Double
    public var angularVelocity: Double
    public var wheelSpeedLeft: Double
    public var wheelSpeedRight: Double
    public var leftEnergised: Bool
    public var rightEnergised: Bool
    public var collisions: Int
    public var odometer: Double
    /// False while the cable is pulled (`setLinkUp(false)`) or a serial-unplug fault is active.
    public var linkUp: Bool
    public var firmware: RoverFirmwareCounters
    /// Kinds of `config.faults` active now (their raw values, e.g. "range-dead").
    public var activeFaults: [String]
}

/// The differential-drive rover behind its serial link, in lockstep: time moves only when
/// `advance(to:)` is called, so a test decides every instant and two runs with the same seed and
/// inputs are identical. The real-time runner drives the same object from CLOCK_MONOTONIC.
///
/// Bytes from the host go in through `receive`; frames to the host come out of `advance` through
/// a callback with the simulated instant at which the device sent them.
public final class RoverSimulation: Sendable {
    public let config: RoverSimulationConfig

    // Reached only through the mutex: the raw buffers are never shared.
    private struct Core: ~Copyable, @unchecked Sendable {
        var time: Int64 = 0
        var rover: DiffDriveRover
        var firmware: RoverFirmware
        var random: SimRandom
        var linkUp = true
        /// Fault kinds active at `time`, updated every physics step.
        var active = ActiveFaults()
        /// The runaway wheel's driven speed while it runs away; nil otherwise.
        var runawaySpeed: Double?
        var sequence: UInt8 = 0
        var nextIMU: Int64 = 0
        var nextEncoders: Int64 = 0
        var nextRange: Int64 = 0
        var nextHeartbeat: Int64 = 0
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: Frame.maxWireCount, alignment: 8)
        let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: Frame.maxPayload, alignment: 8)
        init(config: RoverSimulationConfig) {
            // Each stream's first sample comes one period after power-up.
            nextIMU = RoverSimulation.period(config.imuHz)
            nextEncoders = RoverSimulation.period(config.encoderHz)
            nextRange = RoverSimulation.period(config.rangeHz)
            nextHeartbeat = RoverSimulation.period(config.heartbeatHz)
            rover = DiffDriveRover(parameters: config.parameters, pose: config.start)
            firmware = RoverFirmware(commandTimeout: config.commandTimeout,
                                     hostHeartbeatTimeout: config.hostHeartbeatTimeout)
            random = SimRandom(seed: config.seed)
        }
        deinit {
            output.deallocate()
            payload.deallocate()
        }
    }

    private let core: Mutex<Core>

    public init(config: RoverSimulationConfig = RoverSimulationConfig()) {
        precondition(config.physicsStep > 0, "physics step must be positive")
        self.config = config
        core = Mutex(Core(config: config))
    }

    /// Simulated time (ns since the simulation started).
    public var time: Int64 { core.withLock { $0.time } }

    /// Bytes from the host (motor commands), applied at the current simulated instant.
    public func receive(_ bytes: UnsafeRawBufferPointer) {
        core.withLock { core in
            guard core.linkUp && !ActiveFaults(config.faults, at: core.time).contains(.serialUnplug) else { core.firmware.counters.bytesLost += bytes.count; return }
            core.firmware.receive(bytes, at: core.time)
        }
    }

    public func receive(_ bytes: [UInt8]) { bytes.withUnsafeBytes { receive($0) } }

    /// Pulls or re-plugs the cable: while down, nothing goes either way. A serial-unplug fault
    /// holds the link down whatever this says.
    public func setLinkUp(_ up: Bool) { core.withLock { $0.linkUp = up } }
    public var isLinkUp: Bool { core.withLock { $0.linkUp && !ActiveFaults(config.faults, at: $0.time).contains(.serialUnplug) } }

    /// Steps physics up to `target` (whole physics steps) and hands each frame the device sends to
    /// `emit` with its send instant. `emit` runs under the simulation's lock: it must not call back
    /// into this simulation.
    public func advance(to target: Int64, emit: (UnsafeRawBufferPointer, Int64) -> Void) {
        core.withLock { core in
            let config = self.config
            while core.time + config.physicsStep <= target {
                core.time += config.physicsStep
                core.active = ActiveFaults(config.faults, at: core.time)
                core.firmware.checkWatchdog(at: core.time)
                let dt = Double(config.physicsStep) / 1e9
                var left = core.firmware.drive.left
                if core.active.contains(.runaway) && left.energised {
                    // A shorted driver or a lost encoder loop: the power stage ramps the wheel up
                    // whatever is commanded; only cutting its power (de-energising) stops it.
                    let from = core.runawaySpeed ?? core.rover.wheelSpeed.x
                    let speed = min(from + config.runawayAcceleration * dt, config.parameters.maxWheelSpeed)
                    core.runawaySpeed = speed
                    left = WheelDrive(speed: speed, energised: true)
                } else {
                    core.runawaySpeed = nil
                }
                core.rover.step(dt: dt, left: left, right: core.firmware.drive.right, arena: config.arena)
                Self.sendDue(&core, config: config, emit: emit)
            }
        }
    }

    public func advance(by duration: Int64, emit: (UnsafeRawBufferPointer, Int64) -> Void) {
        advance(to: time + duration, emit: emit)
    }

    public func snapshot() -> RoverSnapshot {
        core.withLock { core in
            RoverSnapshot(time: core.time, pose: core.rover.pose, linearVelocity: core.rover.linearVelocity,
                          angularVelocity: core.rover.angularVelocity, wheelSpeedLeft: core.rover.wheelSpeed.x,
                          wheelSpeedRight: core.rover.wheelSpeed.y, leftEnergised: core.firmware.drive.left.energised,
                          rightEnergised: core.firmware.drive.right.energised, collisions: core.rover.collisions,
                          odometer: core.rover.odometer,
                          linkUp: core.linkUp && !ActiveFaults(config.faults, at: core.time).contains(.serialUnplug),
                          firmware: core.firmware.counters, activeFaults: ActiveFaults(config.faults, at: core.time).names)
        }
    }

    fileprivate static func period(_ hz: Double) -> Int64 { hz > 0 ? Int64((1e9 / hz).rounded()) : .max }

    private static func sendDue(_ core: inout Core, config: RoverSimulationConfig,
                                emit: (UnsafeRawBufferPointer, Int64) -> Void) {
        let now = core.time
        let micros = config.deviceClockStartMicros &+ UInt32(truncatingIfNeeded: now / 1000)
        if now >= core.nextIMU {
            core.nextIMU += period(config.imuHz)
            let r = core.rover
            let message = IMUSampleMessage(
                deviceTimeMicros: micros,
                accel: SIMD3(Float(r.linearAcceleration + core.random.gaussian(config.accelNoise)),
                             Float(r.linearVelocity * r.angularVelocity + core.random.gaussian(config.accelNoise)),
                             Float(9.80665 + core.random.gaussian(config.accelNoise))),
                gyro: SIMD3(Float(core.random.gaussian(config.gyroNoise)), Float(core.random.gaussian(config.gyroNoise)),
                            Float(r.angularVelocity + core.random.gaussian(config.gyroNoise))))
            send(&core, .imuSample, count: message.write(into: core.payload), muted: core.active.contains(.imuDead), emit: emit)
        }
        if now >= core.nextEncoders {
            core.nextEncoders += period(config.encoderHz)
            let ticks = core.rover.encoderTicks
            let message = WheelEncodersMessage(deviceTimeMicros: micros, leftTicks: ticks.left, rightTicks: ticks.right)
            send(&core, .wheelEncoders, count: message.write(into: core.payload), muted: core.active.contains(.encodersDead), emit: emit)
        }
        if now >= core.nextRange {
            core.nextRange += period(config.rangeHz)
            // The range sensor looks forward from the front of the body.
            let p = core.rover.pose
            var nearest = Double.infinity
            let rays = max(config.rangeRays, 1)
            for i in 0..<rays {
                let offset = rays == 1 ? 0 : config.rangeConeHalfAngle * (2 * Double(i) / Double(rays - 1) - 1)
                nearest = min(nearest, config.arena.rayCast(x: p.x, y: p.y, yaw: p.yaw + offset))
            }
            let distance = nearest - config.parameters.bodyRadius + core.random.gaussian(config.rangeNoise)
            let status: UInt8 = distance < config.rangeMinimum ? 1 : distance > config.rangeMaximum ? 2 : 0
            let message = RangeMessage(deviceTimeMicros: micros, range: Float(status == 0 ? distance : 0), status: status)
            send(&core, .range, count: message.write(into: core.payload), muted: core.active.contains(.rangeDead), emit: emit)
        }
        if now >= core.nextHeartbeat {
            core.nextHeartbeat += period(config.heartbeatHz)
            send(&core, .heartbeat, count: 0, muted: false, emit: emit)
        }
    }

    /// A muted frame is still sampled (its noise drawn), so a fault does not shift later frames'
    /// noise: runs with and without a fault stay comparable.
    private static func send(_ core: inout Core, _ type: Frame.MessageType, count: Int, muted: Bool,
                             emit: (UnsafeRawBufferPointer, Int64) -> Void) {
        guard core.linkUp, !muted, !core.active.contains(.serialUnplug), !core.active.contains(.controllerSilent) else { return }
        core.sequence &+= 1
        guard let n = Frame.encode(type: type.rawValue, sequence: core.sequence,
                                   payload: UnsafeRawBufferPointer(rebasing: core.payload[0..<count]), into: core.output) else { return }
        core.firmware.counters.framesSent += 1
        core.firmware.counters.bytesSent += n
        emit(UnsafeRawBufferPointer(rebasing: core.output[0..<n]), core.time)
    }
}
