import ArgumentParser
import Glibc
import RobotSim

/// Which world `robotd sim` and `robotd-sim` run.
public enum DemoWorld: String, ExpressibleByArgument, CaseIterable, Sendable {
    case rover
    case iotRig = "iot-rig"
}

/// One `--fault KIND@SECONDS[+DURATION]`: a fault the simulator injects, or a `policy-*` fault
/// that robotd injects into its own policy (a test hook, not the simulator's).
public enum WorldFault: Sendable, Equatable {
    case simulator(SimulatorFault)
    case policy(kind: String, at: Double)

    public static let policyKinds = ["policy-hang", "policy-spin"]
    /// What `robotd sim --fault` takes: the simulator's kinds and robotd's policy faults.
    public static var validKinds: String { (SimulatorFault.Kind.allCases.map(\.rawValue) + policyKinds).joined(separator: ", ") }
    /// What `robotd-sim --fault` takes: the simulator's kinds only (it runs no policy to fault).
    public static var simulatorKinds: String { SimulatorFault.Kind.allCases.map(\.rawValue).joined(separator: ", ") }

    /// One `--fault` of `robotd-sim`: a simulator fault; robotd's policy faults are refused with
    /// where they belong.
    public static func parseSimulatorFault(_ text: String) throws -> SimulatorFault {
        let spec: (kind: String, at: Double, duration: Double?)
        do { spec = try SimulatorFault.parseSpecification(text) } catch {
            throw ValidationError("\(error.description); kinds: \(simulatorKinds)")
        }
        if policyKinds.contains(spec.kind) {
            throw ValidationError("'\(text)': \(spec.kind) is robotd's own policy fault, not the simulator's: use it with `robotd sim`")
        }
        do { return try SimulatorFault(parsing: text) } catch { throw ValidationError(error.description) }
    }

    public static func parse(_ text: String) throws -> WorldFault {
        let spec: (kind: String, at: Double, duration: Double?)
        do { spec = try SimulatorFault.parseSpecification(text) } catch {
            throw ValidationError("\(error.description); kinds: \(validKinds)")
        }
        if policyKinds.contains(spec.kind) {
            // The policy hook has no release before the end of the run.
            guard spec.duration == nil else { throw ValidationError("'\(text)': \(spec.kind) lasts to the end of the run; no +DURATION") }
            return .policy(kind: spec.kind, at: spec.at)
        }
        guard SimulatorFault.Kind(rawValue: spec.kind) != nil, let fault = try? SimulatorFault(parsing: text) else {
            throw ValidationError("'\(text)': unknown fault '\(spec.kind)'; kinds: \(validKinds)")
        }
        return .simulator(fault)
    }
}

/// Options that describe the simulated world, its scripted gamepad and its faults (`robotd-sim`;
/// `robotd sim` declares its own, which also take robotd's policy faults).
public struct WorldOptions: ParsableArguments {
    @Option(help: "Seed of the sensor noise.")
    public var seed: UInt64 = 1

    @Option(help: "Press the gamepad's e-stop key (BTN_EAST) this many seconds after the start.")
    public var estopAt: Double?

    @Option(help: "Press and release the reset key (BTN_START) this many seconds after the start (repeatable).")
    public var resetAt: [Double] = []

    @Option(name: .customLong("fault"), parsing: .singleValue,
            help: ArgumentHelp("Inject a fault KIND@SECONDS[+DURATION] (repeatable; no duration: to the end). Kinds: \(WorldFault.simulatorKinds).",
                               valueName: "kind@s[+s]"),
            transform: WorldFault.parseSimulatorFault)
    public var faults: [SimulatorFault] = []

    public init() {}

    /// The faults for the simulator (`SimulatorRunner.Options.faults`).
    public var simulatorFaults: [SimulatorFault] { faults }

    public func validate() throws {
        if let e = estopAt, e < 0 { throw ValidationError("--estop-at must be ≥ 0") }
        if resetAt.contains(where: { !($0 >= 0) }) { throw ValidationError("--reset-at must be ≥ 0") }
    }

    public func simulatorOptions(directory: String, broker: (host: String, port: Int)?) -> SimulatorRunner.Options {
        var options = SimulatorRunner.Options()
        options.rover.seed = seed
        options.roverLinkPath = directory + "/rover"
        options.gamepadFIFO = directory + "/gamepad"
        options.broker = broker
        var script: [SimulatedGamepad.Step] = []
        if let e = estopAt {
            let t = Int64(e * 1e9)
            script += [.init(at: t, [.press("BTN_EAST")]), .init(at: t + 100_000_000, [.release("BTN_EAST")])]
        }
        for r in resetAt {
            let t = Int64(r * 1e9)
            script += [.init(at: t, [.press("BTN_START")]), .init(at: t + 100_000_000, [.release("BTN_START")])]
        }
        options.gamepadScript = script
        options.faults = simulatorFaults
        // As root the world runs SCHED_FIFO 60, below robotd's threads: a world starved of CPU on a
        // busy machine would look to robotd like a controller gone silent.
        options.fifoPriority = geteuid() == 0 ? 60 : nil
        return options
    }
}
