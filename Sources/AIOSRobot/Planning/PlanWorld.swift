import Foundation
import Planner
import RTScheduler

/// The world state a planner is told (Planner's `WorldState`), captured off the dispatch thread
/// from what the runtime publishes lock-free: the pose, the fresh sensor values, the mode and stop
/// causes, the executor's progress; with the goal and the recent events the planner service
/// keeps. The revision grows whenever what it holds changes.
struct PlanWorld: Sendable {
    private(set) var revision: UInt64 = 0
    private var events: [WorldState.Event] = []
    private var last: WorldState?

    mutating func record(kind: String, text: String, at seconds: Double) {
        events.append(WorldState.Event(timeS: seconds, kind: kind, text: text))
        if events.count > WorldState.maxRecentEvents { events.removeFirst(events.count - WorldState.maxRecentEvents) }
    }

    /// The state now. `abilityNames` names the executor's ability index.
    mutating func capture(runtime: RobotRuntime, stalled: Bool, goal: WorldState.Goal?, execution: PlanExecutionStatus?,
                          abilityNames: [String], at seconds: Double) -> WorldState {
        let status = runtime.status
        let pose = status.pose.x.isFinite && status.pose.y.isFinite && status.pose.yaw.isFinite
            ? WorldState.Pose(x: status.pose.x, y: status.pose.y, yaw: status.pose.yaw) : nil
        var sensors: [WorldState.Sensor] = []
        for (i, name) in runtime.sensorNames.enumerated() where i < RuntimeStatus.sensorCapacity {
            sensors.append(WorldState.Sensor(name: name, value: status.sensors[i]))
        }
        var active: WorldState.PlanProgress?
        if let e = execution, e.planGoalID != 0 {
            let state: WorldState.PlanProgress.Status = switch e.state {
            case .idle, .running: .running
            case .completed: .completed
            case .failed: .failed
            case .cancelled: .cancelled
            }
            let ability = abilityNames.indices.contains(Int(e.ability)) ? abilityNames[Int(e.ability)] : nil
            active = WorldState.PlanProgress(goalID: e.planGoalID, step: Int(e.step), stepCount: Int(e.stepCount), ability: ability,
                                             status: state)
        }
        var teleop: [Int8] = []
        for (i, policy) in runtime.configuration.policies.enumerated() where policy.kind == "teleop" { teleop.append(Int8(truncatingIfNeeded: i)) }
        let mode = Self.mode(status, stalled: stalled, teleop: teleop, channels: runtime.channelNames.count)
        var world = WorldState(revision: revision, timeS: seconds, pose: pose, sensors: sensors, mode: mode,
                               latched: status.latched, stopCauses: status.causes.kinds.map(\.description), goal: goal,
                               activePlan: active, recentEvents: events)
        world.latchEpoch = runtime.latchEpoch
        if let last, Self.sameContent(last, world) {
            world.revision = revision
        } else {
            revision &+= 1
            world.revision = revision
        }
        last = world
        return world
    }

    /// The `state` topic's words — `stalled`, `stopped`, `recovery`, `holding`, `running` — and
    /// `teleop` while a `teleop` policy (its index among `teleop`) commands a channel: a person has
    /// the sticks, and a plan made before (or while) is stale when that changes (`stale_mode`).
    static func mode(_ status: RuntimeStatus, stalled: Bool, teleop: [Int8] = [], channels: Int = 0) -> String {
        if stalled { return "stalled" }
        if status.latched { return "stopped" }
        if status.inRecovery { return "recovery" }
        if status.holding { return "holding" }
        for i in 0..<min(channels, RuntimeStatus.channelCapacity) where teleop.contains(status.commandedBy[i]) { return "teleop" }
        return "running"
    }

    private static func sameContent(_ a: WorldState, _ b: WorldState) -> Bool {
        var x = a, y = b
        x.revision = 0
        y.revision = 0
        x.timeS = 0
        y.timeS = 0
        return x == y
    }
}
