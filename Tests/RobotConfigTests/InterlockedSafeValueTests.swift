import Foundation
import RobotConfig
import Testing

/// A discrete channel's safe value other than off: a warning in general, an error where an
/// interlock or a thermostat relies on "safe" meaning off (the lock would switch the heater on).
@Suite("check: a discrete safe value that is not off")
struct InterlockedSafeValueTests {
    static func rig(heaterSafe: Int, interlock: Bool) throws -> String {
        var text = try String(contentsOf: repositoryRoot.appendingPathComponent("examples/iot-rig-sim.yaml"), encoding: .utf8)
        text = text.replacingOccurrences(of: "      max_switches_per_minute: 6\n    safe_value: 0\n",
                                         with: "      max_switches_per_minute: 6\n    safe_value: \(heaterSafe)\n")
        if !interlock { text = text.replacingOccurrences(of: "    interlocks:\n      - {max: 60, channels: [heater]}", with: "") }
        return text
    }

    @Test func when_an_interlocked_heater_is_safe_when_on_expect_an_error() throws {
        let text = try Self.rig(heaterSafe: 1, interlock: true)
        #expect(text.contains("safe_value: 1"))
        let report = check(text)
        #expect(report.configuration == nil)
        #expect(report.errors.contains { $0.keyPath == "channels[0].safe_value" && $0.message.contains("interlocked") }, "\(report)")
    }

    @Test func when_a_thermostat_heater_without_interlock_is_safe_when_on_expect_an_error_too() throws {
        let report = check(try Self.rig(heaterSafe: 1, interlock: false))
        #expect(report.errors.contains { $0.keyPath == "channels[0].safe_value" && $0.message.contains("thermostat") }, "\(report)")
    }

    @Test func when_the_heater_is_safe_when_off_expect_no_problem_with_it() throws {
        let report = check(try Self.rig(heaterSafe: 0, interlock: true))
        #expect(!report.problems.contains { $0.keyPath == "channels[0].safe_value" })
    }
}
