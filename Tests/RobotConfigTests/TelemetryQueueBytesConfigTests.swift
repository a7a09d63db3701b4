import RobotConfig
import Testing

/// `mqtt.telemetry.max_queued_bytes`: the telemetry connection's bound on the bytes it has handed
/// over and not yet seen written out or acknowledged (docs/mqtt.md, "A bounded queue").
@Suite("robotd check: mqtt.telemetry.max_queued_bytes")
struct TelemetryQueueBytesConfigTests {
    @Test func the_byte_bound_has_a_default_takes_a_value_and_refuses_one_out_of_range() throws {
        let none = check(base(appending: ["mqtt:", "  broker: 127.0.0.1:1883", "  telemetry:", "    interval_ms: 500"]))
        #expect(none.configuration?.mqtt?.telemetry?.maxQueuedBytes == 4_194_304, "\(none)")
        let set = check(base(appending: ["mqtt:", "  broker: 127.0.0.1:1883", "  telemetry:", "    max_queued_bytes: 1048576"]))
        #expect(set.errors.isEmpty && set.configuration?.mqtt?.telemetry?.maxQueuedBytes == 1_048_576, "\(set)")
        let small = check(base(appending: ["mqtt:", "  broker: 127.0.0.1:1883", "  telemetry:", "    max_queued_bytes: 1000"]))  // 20
        #expect(small.configuration == nil)
        expectProblem(small, at: 20, 23, "mqtt.telemetry.max_queued_bytes", "out of range")
    }
}

/// `mqtt.keepalive_s`: libmosquitto (2.0) refuses a keep-alive under 5 s at connect, so a robot
/// configured with one would never connect; `robotd check` refuses it first.
@Suite("robotd check: mqtt.keepalive_s")
struct KeepaliveConfigTests {
    @Test func a_keepalive_under_5_s_is_refused_5_is_taken() {
        let short = check(base(appending: ["mqtt:", "  broker: 127.0.0.1:1883", "  keepalive_s: 2"]))  // line 19
        #expect(short.configuration == nil)
        expectProblem(short, at: 19, 16, "mqtt.keepalive_s", "out of range")
        let five = check(base(appending: ["mqtt:", "  broker: 127.0.0.1:1883", "  keepalive_s: 5"]))
        #expect(five.errors.isEmpty && five.configuration?.mqtt?.keepaliveS == 5, "\(five)")
    }
}

/// `mqtt.command_confirmation_s`: how long an `mqtt` actuator's QoS 1 command may go unacknowledged
/// while connected before its channel fails; absent, the client's default (three keep-alives).
@Suite("robotd check: mqtt.command_confirmation_s")
struct CommandConfirmationConfigTests {
    @Test func the_limit_is_absent_by_default_takes_a_value_and_refuses_one_out_of_range() {
        let none = check(base(appending: ["mqtt:", "  broker: 127.0.0.1:1883"]))
        #expect(none.errors.isEmpty && none.configuration?.mqtt != nil && none.configuration?.mqtt?.commandConfirmationS == nil, "\(none)")
        let set = check(base(appending: ["mqtt:", "  broker: 127.0.0.1:1883", "  command_confirmation_s: 1.5"]))
        #expect(set.errors.isEmpty && set.configuration?.mqtt?.commandConfirmationS == 1.5, "\(set)")
        let short = check(base(appending: ["mqtt:", "  broker: 127.0.0.1:1883", "  command_confirmation_s: 0.05"]))  // line 19
        #expect(short.configuration == nil)
        expectProblem(short, at: 19, 27, "mqtt.command_confirmation_s", "out of range")
    }
}
