import SimulatorBridge
import Actuators
import Foundation
import RTScheduler
import RobotConfig
import RobotSim
import SafetyGuard
import Synchronization
import Testing
import Transports
import Yams
@testable import AIOSRobot

/// The example configurations, read from the repository (the same files users run).
enum Examples {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples")

    static func text(_ name: String) throws -> String {
        try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
    }

    static func configuration(_ name: String, edit: (inout String) -> Void = { _ in }) throws -> RobotConfiguration {
        var yaml = try text(name)
        edit(&yaml)
        return try YAMLDecoder().decode(RobotConfiguration.self, from: yaml)
    }
}

/// Any rover configuration driving the simulated rover on virtual time: the rover's bytes reach
/// every serial input's feed, a scripted gamepad (plus the empty report a wireless pad sends every
/// 200 ms) every evdev input, and the configuration's `serial_frames` channels drive the
/// simulator's firmware. Everything runs on the test thread in lockstep: a run is a pure function
/// of its configuration.
final class ConfiguredRoverLoop: Sendable {
    let clock = VirtualClock()
    let scheduler: Scheduler
    let rover: RoverSimulation
    let runtime: RobotRuntime
    let pads = Mutex<[SimulatedGamepad]>([])
    /// Off: the gamepad goes silent (no keep-alive), as an unplugged wireless pad.
    let padAlive = Atomic<Bool>(true)
    /// The gamepad's stream has not sent anything yet: its first bytes are the sticks' positions,
    /// as the simulator's FIFO writer sends them to a reader that opens it.
    private let padOpening = Atomic<Bool>(true)
    private let feeds: [@Sendable (UnsafeRawBufferPointer, Int64) -> Void]
    private let gamepads: [GamepadInput]
    private let audit = Mutex<[AuditRecord]>([])
    /// Ground truth once every 50 ms: (t, x, y).
    let path = Mutex<[(t: Int64, x: Double, y: Double)]>([])

    init(_ configuration: RobotConfiguration, simulation: RoverSimulationConfig = RoverSimulationConfig(),
         gamepad script: [SimulatedGamepad.Step] = []) throws {
        rover = RoverSimulation(config: simulation)
        var mappings: [SerialFrameBackend.Mapping] = []
        for actuator in configuration.actuators where actuator.kind == "serial_frames" {
            for entry in try SettingsReader(owner: actuator.name, actuator.settings).entries("channels") {
                guard let index = configuration.channels.firstIndex(where: { $0.name == entry.key }),
                      case .number(let motor)? = entry.value["motor"] else { continue }
                mappings.append(.init(channel: ChannelID(index: index), motor: UInt8(motor), mode: .velocity))
            }
        }
        let backend = SimulatorBackend(name: "rover", rover: rover, mappings: mappings)
        scheduler = Scheduler(clock: clock)
        let clock = self.clock
        runtime = try RobotRuntime(configuration: configuration, scheduler: scheduler) { seal in
            try ActuatorSet(seal: seal, backends: [backend], clock: clock)
        }
        feeds = runtime.endpoints.compactMap { if case .serial(let s) = $0.endpoint { s.feed } else { nil } }
        gamepads = runtime.endpoints.compactMap { if case .inputDevice(let d) = $0.endpoint { d.gamepad } else { nil } }
        let first = try SimulatedGamepad(script: script)
        pads.withLock { $0.append(first) }
        runtime.actuators.start()
    }

    /// Keys pressed at `at` and released at `release` (simulated ns); axes as raw values.
    func script(_ steps: [SimulatedGamepad.Step]) throws {
        let pad = try SimulatedGamepad(script: steps)
        pads.withLock { $0.append(pad) }
    }

    /// Advances the world and robotd together in 1 ms steps.
    func run(until end: Int64) {
        var t = rover.time
        let keepAlive: [UInt8] = {
            var bytes: [UInt8] = []
            InputEvent(type: 0, code: 0, value: 0).write(into: &bytes)
            return bytes
        }()
        while t < end {
            t += 1_000_000
            rover.advance(to: t) { bytes, at in for feed in feeds { feed(bytes, at) } }
            var records = pads.withLock { pads in pads.indices.flatMap { pads[$0].advance(to: t) } }
            if records.isEmpty && t % 200_000_000 == 0 && padAlive.load(ordering: .relaxed) { records = keepAlive }
            if !records.isEmpty && padOpening.exchange(false, ordering: .relaxed) {
                records = pads.withLock { $0[0].stateReport(at: t) } + records
            }
            if !records.isEmpty { records.withUnsafeBytes { bytes in for pad in gamepads { pad.feed(bytes: bytes, arrival: t) } } }
            scheduler.advance(to: Instant(nanoseconds: t))
            if t % 50_000_000 == 0 {
                let pose = rover.snapshot().pose
                path.withLock { $0.append((t, pose.x, pose.y)) }
            }
        }
    }

    var snapshot: RoverSnapshot { rover.snapshot() }
    var status: RuntimeStatus { runtime.status }

    /// The audit so far (drained into a list kept here).
    var records: [AuditRecord] { audit.withLock { $0 += runtime.audit.drain(); return $0 } }

    func task(_ name: String) -> TaskSnapshot? { scheduler.snapshot().task(named: name) }

    /// The closest the ground-truth path came to a point, and when.
    func closestApproach(to point: (x: Double, y: Double)) -> (distance: Double, at: Int64) {
        path.withLock { path in
            path.map { (hypot($0.x - point.x, $0.y - point.y), $0.t) }.min { $0.0 < $1.0 } ?? (.infinity, 0)
        }
    }
}
