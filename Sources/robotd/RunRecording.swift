import CRealtime
import Foundation
import Glibc
import RTScheduler
import RobotSim
import RunReport
import SafetyGuard

/// Records a demo run for `--svg`: the simulator's ground truth sampled at about 20 Hz, collisions
/// from its counter, latches and resets from the guard's audit (as the demo drains it), put on the
/// simulator's time line, and injected faults with their windows.
struct RunRecorder {
    /// Seconds of simulated time between samples.
    static let interval = 0.05

    private var trace: RunTrace
    /// CLOCK_MONOTONIC (ns) at which the simulator's time was zero. The simulator's time trails the
    /// clock by up to one tick, so each reading (clock after snapshot) bounds it from above and the
    /// smallest seen is the closest.
    private var simulatorOrigin = Int64.max
    private var lastCollisions = 0
    private var lastSample = -Double.infinity
    /// Audit instants are on the scheduler's clock (CLOCK_MONOTONIC); mapped to simulated time at
    /// the end, with the best origin estimate.
    private var latches: [(at: Int64, cause: String, category: Int)] = []
    private var resets: [Int64] = []

    init(robot: String, seed: UInt64?, rover config: RoverSimulationConfig, faults: [FaultWindow]) {
        let a = config.arena
        let rover = RoverTrace(
            arena: ArenaShape(minX: -a.halfWidth, minY: -a.halfHeight, maxX: a.halfWidth, maxY: a.halfHeight,
                              obstacles: a.obstacles.map { ArenaShape.Circle(x: $0.x, y: $0.y, radius: $0.radius) }),
            bodyRadius: config.parameters.bodyRadius,
            start: TracePose(x: config.start.x, y: config.start.y, yaw: config.start.yaw))
        trace = RunTrace(world: .rover, robot: robot, duration: 0, seed: seed, rover: rover, faults: faults)
    }

    init(robot: String, seed: UInt64?, rigBand band: Double, faults: [FaultWindow]) {
        trace = RunTrace(world: .iotRig, robot: robot, duration: 0, seed: seed, rig: RigTrace(band: band), faults: faults)
    }

    /// The simulator's faults as windows in seconds; policy faults (robotd's own hook) last to the end.
    static func windows(_ faults: [SimulatorFault], policy: [(kind: String, at: Double)] = []) -> [FaultWindow] {
        faults.map { f in
            FaultWindow(kind: f.kind.rawValue, start: Double(f.start) / 1e9, end: f.duration.map { Double(f.start + $0) / 1e9 })
        } + policy.map { FaultWindow(kind: $0.kind, start: $0.at) }
    }

    /// Tells the recorder what the simulator's clock read (`simulatorTime`, ns) just before `now`.
    mutating func observe(simulatorTime: Int64, now: Int64) {
        simulatorOrigin = min(simulatorOrigin, now - simulatorTime)
    }

    /// One rover sample, if `interval` has passed on the simulator since the last one (or `force`).
    mutating func sample(_ s: RoverSnapshot, latched: Bool, force: Bool = false) {
        observe(simulatorTime: s.time, now: rt_monotonic_ns())
        let t = Double(s.time) / 1e9
        if s.collisions > lastCollisions {
            // A contact stops the body where it touched: the pose now is the contact's.
            for _ in lastCollisions..<s.collisions {
                trace.rover?.collisions.append(CollisionEvent(t: t, x: s.pose.x, y: s.pose.y))
            }
            lastCollisions = s.collisions
        }
        guard force ? t > lastSample : t >= lastSample + Self.interval else { return }
        lastSample = t
        trace.rover?.samples.append(PathSample(t: t, x: s.pose.x, y: s.pose.y, yaw: s.pose.yaw, latched: latched))
    }

    /// One rig sample. Its physics steps every 100 ms, so new states come at 10 Hz however often
    /// this is called; `simulatorTime` (ns, the runner's 1 ms clock) places the audit's instants.
    mutating func sample(_ s: RigSnapshot, simulatorTime: Int64, setpoint: Double, latched: Bool) {
        observe(simulatorTime: simulatorTime, now: rt_monotonic_ns())
        let t = Double(s.time) / 1e9
        guard t >= lastSample + Self.interval else { return }
        lastSample = t
        trace.rig?.samples.append(RigSample(t: t, temperature: s.temperature, setpoint: setpoint, heaterOn: s.heaterOn,
                                            fanDuty: s.fanDuty, latched: latched))
    }

    mutating func note(_ records: [AuditRecord]) {
        for r in records {
            switch r.kind {
            case .latched: latches.append((r.at.nanoseconds, r.fault?.description ?? "?", r.category?.rawValue ?? -1))
            case .reset, .resetIntoRecovery: resets.append(r.at.nanoseconds)
            default: break
            }
        }
    }

    /// The run as recorded: events on the simulator's time, latches placed on the path.
    func finish() -> RunTrace {
        var out = trace
        let origin = simulatorOrigin == .max ? 0 : simulatorOrigin
        func seconds(_ ns: Int64) -> Double { max(0, Double(ns - origin) / 1e9) }
        out.duration = max(trace.rover?.samples.last?.t ?? 0, trace.rig?.samples.last?.t ?? 0)
        out.latches = latches.map { l in
            let t = seconds(l.at)
            let p = trace.rover?.position(at: t)
            return LatchEvent(t: t, x: p?.x, y: p?.y, cause: l.cause, category: l.category)
        }
        out.resets = resets.map { ResetEvent(t: seconds($0)) }
        return out
    }

    /// Sleeps `seconds` in slices of `interval`, calling `take` before each slice and at the end.
    mutating func sleep(_ seconds: Double, sampling take: (inout RunRecorder) -> Void) {
        let end = rt_monotonic_ns() + Int64(seconds * 1e9)
        while case let now = rt_monotonic_ns(), now < end {
            take(&self)
            usleep(UInt32(min(Double(end - now) / 1e9, Self.interval) * 1e6))
        }
        take(&self)
    }

    /// Renders and writes the SVG, then names it on stderr.
    static func write(_ trace: RunTrace, to path: String) throws {
        let svg = RunSVG.render(trace)
        do {
            try Data(svg.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw SVGWriteError(description: "could not write the SVG to \(path): \(error.localizedDescription)")
        }
        stderrLine("svg: \(path)")
    }

    /// `--svg FILE` checked before the run: its folder must exist and be writable.
    static func validate(_ path: String) -> String? {
        guard !path.isEmpty else { return "--svg needs a file name" }
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            return "--svg: \(path) is a folder; give a file name"
        }
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            return "--svg: the folder \(folder) does not exist"
        }
        guard FileManager.default.isWritableFile(atPath: folder) else { return "--svg: the folder \(folder) is not writable" }
        return nil
    }
}

struct SVGWriteError: Error, CustomStringConvertible {
    let description: String
}
