import AIOSRobot
import Foundation
import Planner
import RobotConfig
import Testing

/// The repository's root (examples/), found from this file.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// A rover in a 10 × 8 m arena with a `waypoints` policy; wheels limited to 12 rad/s (0.6 m/s at
/// r = 0.05 m), 8 rad/s (0.4 m/s) for the planner. `workspace` and `envelope` lines can be swapped.
func roverYAML(workspace: String = "workspace: {polygon: [[-5, -4], [5, -4], [5, 4], [-5, 4]], warn_margin: 0.3, stop_margin: 0.3, stop_category: 1}",
               envelope: String = "    envelopes: {planner: {max_velocity: 8}}",
               abilities: [String]? = nil, planner: String = "planner: {max_steps: 4, max_plan_age_s: 20, max_pose_drift: 0.5}") -> String {
    let wheel = { (name: String) in [
        "  - name: \(name)",
        "    kind: continuous",
        "    interface: velocity",
        "    limits: {max_velocity: 12, max_acceleration: 40}",
        envelope,
        "    safe_value: 0",
        "    stop_category: 1",
        "    watchdog_timeout_ms: 100",
        "    motion_monitor: {tolerance: 3, time_ms: 250}",
    ] }
    let lines = [
        "robot: {id: planner-test}",
        "estop: none",
        "inputs:",
        "  - {name: rover_port, kind: serial, path: /dev/null, codec: frame, feeds: {wheel_encoders: wheel_encoders}, link_timeout_ms: 150}",
        "sensors:",
        "  - {name: wheel_encoders, max_age_ms: 200, reaction: stop, stop_category: 1}",
        "odometry: {encoders: wheel_encoders, left_wheel: wheel_left, right_wheel: wheel_right, wheel_radius: 0.05, wheel_separation: 0.3, ticks_per_revolution: 2048}",
        "channels:",
    ] + wheel("wheel_left") + wheel("wheel_right") + [
        workspace,
        "policies:",
        "  - {name: route, kind: waypoints, period_ms: 20, critical: true, channels: [wheel_left, wheel_right], points: [[0, 0]], speed: 0.3}",
        "actuators:",
        "  - {name: motors, kind: serial_frames, path: /dev/null, channels: {wheel_left: {motor: 0}, wheel_right: {motor: 1}}}",
        "abilities:",
    ] + (abilities ?? [
        "  - {name: goto, policy: route, timeout_s: 60, no_progress: {min_progress: 0.05, time_s: 10}, preconditions: [not_latched, inside_workspace]}",
        "  - {name: patrol, policy: route, timeout_s: 300, no_progress: {min_progress: 0.05, time_s: 10}, arguments: {points: {max_points: 8}}}",
        "  - {name: stop}",
        "  - {name: wait}",
    ]) + [planner]
    return lines.joined(separator: "\n") + "\n"
}

/// The bundled IoT rig (examples/iot-rig-sim.yaml: interlock at 60 °C on the heater, band 1 °C)
/// with thermostat abilities.
func rigYAML() throws -> String {
    var example = try String(contentsOf: repositoryRoot.appendingPathComponent("examples/iot-rig-sim.yaml"), encoding: .utf8)
    // The example's own abilities and planner settings give way to these.
    if let own = example.range(of: "\nabilities:") { example = String(example[..<own.lowerBound]) + "\n" }
    return example + """

    abilities:
      - {name: set_temperature, policy: thermostat, timeout_s: 1800}
      - {name: hold, policy: thermostat, timeout_s: 600, arguments: {minutes: {max: 120}}}
      - {name: stop}
      - {name: wait}

    """
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
}

func configuration(_ yaml: String) throws -> RobotConfiguration {
    let report = ConfigurationLoader.load(text: yaml, file: "fixture.yaml", catalog: RobotKinds.catalog)
    guard let configuration = report.configuration else { throw FixtureError(description: "\(report)") }
    return configuration
}

func context(_ yaml: String) throws -> PlanningContext {
    try PlanningContext(configuration: try configuration(yaml))
}

/// A world at rest in the middle of the arena, goal 1 current.
func world(time: Double = 100, pose: WorldState.Pose? = WorldState.Pose(x: 0, y: 0, yaw: 0), mode: String = "auto",
           latched: Bool = false, stopCauses: [String] = [], goalID: UInt64 = 1) -> WorldState {
    WorldState(revision: 7, timeS: time, pose: pose, sensors: [WorldState.Sensor(name: "range", value: 2.5)], mode: mode,
               latched: latched, stopCauses: stopCauses, goal: WorldState.Goal(id: goalID, text: "a goal"))
}

/// A request for goal 1 made from `world()`.
func request(_ w: WorldState = world()) -> PlanRequest {
    PlanRequest(goal: WorldState.Goal(id: 1, text: "a goal"), world: w)
}

/// The rejection of `json` by the rover's validator, or a test failure.
func rejection(_ json: String, context c: PlanningContext, now: WorldState = world(),
               sourceLocation: SourceLocation = #_sourceLocation) -> PlanRejection? {
    let verdict = PlanValidator(context: c).validate(json, request: request(), world: now)
    #expect(verdict.rejection != nil, "accepted: \(json)", sourceLocation: sourceLocation)
    return verdict.rejection
}

/// The issue with `code` (and `path`, when given), or a test failure listing what was found.
@discardableResult
func expectIssue(_ rejection: PlanRejection?, _ code: PlanIssue.Code, path: String? = nil, _ fragment: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) -> PlanIssue? {
    let found = rejection?.issues.first { $0.code == code && (path == nil || $0.path == path) && (fragment.isEmpty || $0.message.contains(fragment)) }
    #expect(found != nil, "no \(code.rawValue) at \(path ?? "any path") containing \"\(fragment)\"; found: \(rejection?.issues.map(\.description) ?? [])",
            sourceLocation: sourceLocation)
    return found
}
