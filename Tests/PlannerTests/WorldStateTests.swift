import Foundation
import Planner
import Testing

/// The planner's compact view of the robot and its JSON form.
@Suite("World state")
struct WorldStateTests {
    @Test func its_JSON_has_every_key_sorted_and_unknown_values_as_null() throws {
        let state = WorldState(revision: 3, timeS: 12.5, pose: WorldState.Pose(x: .nan, y: 0, yaw: 0),
                               sensors: [WorldState.Sensor(name: "range", value: 1.25),
                                         WorldState.Sensor(name: "imu", value: .nan)],
                               mode: "running", latched: true, stopCauses: ["link:rover_port", "estop"],
                               goal: WorldState.Goal(id: 4, text: "go to 2,3"),
                               activePlan: WorldState.PlanProgress(goalID: 4, step: 1, stepCount: 3, ability: "wait", status: .running))
        let text = String(decoding: try state.jsonData(), as: UTF8.self)
        #expect(text == #"{"active_plan":{"ability":"wait","goal_id":4,"status":"running","step":1,"step_count":3},"goal":{"id":4,"text":"go to 2,3"},"latched":true,"mode":"running","pose":null,"recent_events":[],"revision":3,"sensors":[{"name":"imu","value":null},{"name":"range","value":1.25}],"stop_causes":["estop","link:rover_port"],"time_s":12.5}"#)
        let decoded = try JSONDecoder().decode(WorldState.self, from: Data(text.utf8))
        #expect(decoded == state)
        #expect(decoded.sensor("range") == 1.25 && decoded.sensor("imu") == nil)
    }

    @Test func recent_events_are_bounded_and_each_counts_a_revision() {
        var state = WorldState(revision: 0, timeS: 0, pose: nil, mode: "auto", latched: false)
        for i in 0..<40 { state.record(WorldState.Event(timeS: Double(i), kind: "tick", text: "event \(i)")) }
        #expect(state.recentEvents.count == WorldState.maxRecentEvents)
        #expect(state.recentEvents.first?.text == "event 24" && state.recentEvents.last?.text == "event 39")
        #expect(state.revision == 40)
    }
}
