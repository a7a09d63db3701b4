import Actuators
import RTScheduler
import RobotConfig
import SafetyGuard

/// The whole check of a robot's file, as `robotd check` runs it and as `robotd run` should before
/// it opens anything: the validator against the kinds this runtime knows (every problem at once,
/// with its place), then — when the file is clean — a dry build of the runtime: the guard, every
/// input, policy and filter built as `robotd run` builds them, on a virtual clock, with a
/// recording back end instead of the actuators. No device is opened, no thread started, nothing
/// published. What the build refuses (a kind's rule the schema cannot say, such as a teleop axis
/// its gamepad does not have) becomes a problem at the entry it names.
public enum RobotFileCheck {
    /// `lookUpNames`: `robotd check`'s host-name lookups (`ConfigurationLoader`); a run never.
    public static func load(path: String, lookUpNames: Bool = false) -> ConfigurationReport {
        dryBuild(ConfigurationLoader.load(path: path, catalog: RobotKinds.catalog, lookUpNames: lookUpNames))
    }

    public static func load(text: String, file: String, lookUpNames: Bool = false) -> ConfigurationReport {
        dryBuild(ConfigurationLoader.load(text: text, file: file, catalog: RobotKinds.catalog, lookUpNames: lookUpNames))
    }

    static func dryBuild(_ report: ConfigurationReport) -> ConfigurationReport {
        guard let configuration = report.configuration else { return report }
        var report = report
        do {
            let clock = VirtualClock()
            let channels = configuration.channels.indices.map { ChannelID(index: $0) }
            _ = try RobotRuntime(configuration: configuration, scheduler: Scheduler(clock: clock)) { seal in
                try ActuatorSet(seal: seal, backends: [RecordingBackend(name: "check", channels: channels)], clock: clock)
            }
        } catch {
            let message = "\(error)"
            let (keyPath, text) = locate(message, in: configuration)
            let place = keyPath.flatMap { report.place(of: $0) }
            report.add(ConfigProblem(severity: .error, file: report.file, line: place?.line ?? 0, column: place?.column ?? 0,
                                     keyPath: place == nil ? "" : keyPath ?? "", message: text))
        }
        return report
    }

    /// The runtime names what it refuses: `policy teleop: …`, `input gamepad: …`, `estop.remote: …`.
    /// Returns the entry's key path (when it is one of the file's) and the rest of the message.
    static func locate(_ message: String, in configuration: RobotConfiguration) -> (keyPath: String?, message: String) {
        guard let colon = message.firstIndex(of: ":") else { return (nil, message) }
        let head = message[..<colon]
        let rest = message[message.index(after: colon)...].trimmingPrefix(" ")
        let words = head.split(separator: " ", maxSplits: 1).map(String.init)
        if words.count == 2 {
            let names: [String]? = switch words[0] {
            case "policy": configuration.policies.map(\.name)
            case "input": configuration.inputs.map(\.name)
            case "actuator": configuration.actuators.map(\.name)
            case "channel": configuration.channels.map(\.name)
            case "sensor": configuration.sensors.map(\.name)
            default: nil
            }
            let section = ["policy": "policies", "input": "inputs", "actuator": "actuators", "channel": "channels",
                           "sensor": "sensors"][words[0]]
            if let names, let section, let index = names.firstIndex(of: words[1]) {
                return ("\(section)[\(index)]", "\(head): \(rest)")
            }
        }
        if words.count == 1 { return (String(head), String(rest)) }
        return (nil, message)
    }
}
