import Foundation
import RTScheduler
import RobotConfig
import SafetyGuard
import Testing
@testable import AIOSRobot

/// The inbound topics (docs/mqtt.md, "Inbound topics and security") on the rig example in
/// lockstep: the remote stop under the prefix, reset requests on `estop/reset/<user>` acted on only
/// for `reset_users`, each naming the latch it releases, each acted on at most once, and every
/// one recorded with its user, outcome and reasons.
@Suite("Remote stop and reset requests: users, latch numbers, at most once, recorded")
struct RemoteCommandTests {
    static let stop = "robotd/iot-rig-sim/estop"
    static func reset(_ user: String) -> String { "robotd/iot-rig-sim/estop/reset/\(user)" }

    /// The rig heating (20 s), then stopped by a remote stop.
    static func stoppedRig(edit: (inout String) -> Void = { _ in }) throws -> ConfiguredRigLoop {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml", edit: edit))
        loop.run(until: 20_000_000_000)
        #expect(loop.heaterOn && !loop.status.latched)
        loop.publish(stop, "stop")
        loop.run(until: loop.rig.time + 200_000_000)
        #expect(loop.status.latched && loop.status.latchCause == .remoteStop && !loop.heaterOn)
        return loop
    }

    static func step(_ loop: ConfiguredRigLoop) { loop.run(until: loop.rig.time + 200_000_000) }

    @Test func the_topics_default_to_the_prefix_and_follow_mqtt_prefix() throws {
        let configuration = try Examples.configuration("iot-rig-sim.yaml")
        let topics = try #require(configuration.inboundTopics)
        #expect(topics.stop == "robotd/iot-rig-sim/estop" && topics.resetFilter == "robotd/iot-rig-sim/estop/reset/+")
        #expect(topics.goalBase == "robotd/iot-rig-sim/goal")
        #expect(topics.user(inResetTopic: "robotd/iot-rig-sim/estop/reset/alice") == "alice")
        #expect(topics.user(inResetTopic: "robotd/iot-rig-sim/estop/reset/a/b") == nil)
        #expect(topics.user(inResetTopic: "robotd/iot-rig-sim/estop/reset") == nil)
        let subscribed = try #require(ConfiguredRigLoop(configuration).runtime.endpoints.first { $0.name == "estop.remote" })
        guard case .mqtt(let m) = subscribed.endpoint else { Issue.record("not an MQTT endpoint"); return }
        #expect(m.subscriptions.map(\.filter) == ["robotd/iot-rig-sim/estop", "robotd/iot-rig-sim/estop/reset/+"])

        let moved = try Examples.configuration("iot-rig-sim.yaml") {
            $0 = $0.replacingOccurrences(of: "  keepalive_s: 5", with: "  keepalive_s: 5\n  prefix: plant/7")
        }
        #expect(moved.topicPrefix == "plant/7/")
        #expect(moved.inboundTopics?.stop == "plant/7/estop" && moved.inboundTopics?.resetBase == "plant/7/estop/reset")
    }

    /// `heartbeat_ms`: the operator station's keep-alive proves the stop path end to end. Its
    /// silence (a broker or ACL that grants the subscription and drops the messages) is a lost
    /// link: a stop, and a reset is refused until the keep-alives are back.
    @Test func when_the_operator_stations_keepalive_goes_silent_expect_a_stop_and_no_reset_until_it_is_back() throws {
        let alive = "robotd/iot-rig-sim/estop/alive"
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml") {
            $0 = $0.replacingOccurrences(of: "heartbeat_ms: none", with: "heartbeat_ms: 500")
        })
        guard case .mqtt(let m)? = loop.runtime.endpoints.first(where: { $0.name == "estop.remote" })?.endpoint else {
            Issue.record("no remote stop endpoint")
            return
        }
        #expect(m.subscriptions.map(\.filter).contains(alive))
        // Keep-alives every 200 ms, their counter advancing: the rig heats, nothing latches.
        var counter = 0
        for _ in 0..<100 {
            counter += 1
            loop.publish(alive, "\(counter)")
            Self.step(loop)
        }
        #expect(!loop.status.latched && loop.heaterOn)
        // Silent (only a retained keep-alive, the broker's memory): a lost link within about 0.5 s.
        loop.publish(alive, "\(counter + 1)", retained: true)
        #expect(loop.run(for: 1_000_000_000) { loop.status.latched })
        #expect(loop.status.latchCause == .connectionLost && loop.status.causes.contains(.connectionLost) && !loop.status.linksUp)
        loop.run(until: loop.rig.time + 2_000_000_000)
        #expect(!loop.heaterOn)
        // A reset while it stays silent is refused: the cause persists.
        loop.publish(Self.reset("operator"), "reset \(loop.status.latchSequence)")
        Self.step(loop)
        #expect(loop.status.latched && loop.status.refusedResets == 1)
        // The keep-alives come back: the link is up again, and a reset naming the latch releases it.
        for _ in 0..<5 {
            counter += 1
            loop.publish(alive, "\(counter)")
            Self.step(loop)
        }
        #expect(loop.status.linksUp && loop.status.latched)
        loop.publish(Self.reset("operator"), "reset \(loop.status.latchSequence)")
        loop.publish(alive, "\(counter + 1)")
        Self.step(loop)
        #expect(!loop.status.latched && loop.status.resets == 1)
    }

    /// `reset N` or `{"latch": N}`; a bare number is no request (a stray number published there
    /// would be one).
    @Test func a_request_names_its_latch_as_reset_n_or_json() {
        #expect(RemoteStop.latchNumber(Array("reset 7".utf8)) == 7)
        #expect(RemoteStop.latchNumber(Array(" RESET\t12\n".utf8)) == 12)
        #expect(RemoteStop.latchNumber(Array(#"{"latch": 5, "note": "cleared"}"#.utf8)) == 5)
        #expect(RemoteStop.latchNumber(Array("reset 1099511627776".utf8)) == 1 << 40)
        for text in ["3", " 3\n", "reset", "", "reset -1", "reset 1.5", "reset seven", "release 4", #"{"latch": 2.5}"#, #"{"latch": true}"#,
                     "reset 9007199254740993", "reset ٣"] {
            #expect(RemoteStop.latchNumber(Array(text.utf8)) == nil, "\(text)")
        }
        #expect(RemoteStop.latchNumber(Array(repeating: UInt8(ascii: "1"), count: 300)) == nil)
    }

    @Test func when_an_authorised_user_names_the_current_latch_expect_the_release_recorded_with_the_user() throws {
        let loop = try Self.stoppedRig()
        let latch = loop.status.latchSequence
        loop.publish(Self.reset("operator"), "reset \(latch)")
        Self.step(loop)
        #expect(!loop.status.latched && loop.status.resets == 1)
        #expect(loop.status.latchSequence > latch)  // the release is a new stop state
        let records = loop.runtime.remoteResets.records()
        #expect(records.count == 1)
        let r = try #require(records.first)
        #expect(r.user == "operator" && r.latch == latch && r.outcome == .released && r.reason == nil && r.reasons.isEmpty)
        #expect(r.sequence == 1 && r.at.nanoseconds >= 20_000_000_000)
    }

    @Test func when_a_user_not_in_reset_users_asks_expect_a_refusal_recorded_and_the_latch_held() throws {
        let loop = try Self.stoppedRig()
        let latch = loop.status.latchSequence
        loop.publish(Self.reset("mallory"), "reset \(latch)")
        loop.publish(Self.reset(""), "reset \(latch)")
        Self.step(loop)
        #expect(loop.status.latched && loop.status.resets == 0 && loop.status.refusedResets == 0)
        #expect(loop.status.latchSequence == latch)  // nothing reached the control path
        #expect(loop.runtime.remoteStopCounters.unauthorised.load(ordering: .relaxed) == 2)
        let records = loop.runtime.remoteResets.records()
        #expect(records.map(\.user) == ["mallory", ""])
        #expect(records.allSatisfy { $0.outcome == .refused && $0.reason == .notAuthorised && $0.latch == latch })
        #expect(records.first?.reasons == ["user-not-authorised"])
    }

    @Test func when_a_request_names_no_latch_or_an_old_one_expect_a_refusal_and_the_latch_held() throws {
        let loop = try Self.stoppedRig()
        let latch = loop.status.latchSequence
        loop.publish(Self.reset("operator"), "reset")
        loop.publish(Self.reset("operator"), "reset \(latch - 1)")
        loop.publish(Self.reset("operator"), "reset \(latch + 1)")
        Self.step(loop)
        #expect(loop.status.latched && loop.status.resets == 0 && loop.status.staleResetsIgnored == 2)
        let records = loop.runtime.remoteResets.records()
        #expect(records.map(\.reason) == [.noLatchNumber, .staleLatch, .staleLatch])
        #expect(records.map(\.latch) == [nil, latch - 1, latch + 1])
        // A stale request does not use up the current number.
        loop.publish(Self.reset("operator"), #"{"latch": \#(latch)}"#)
        Self.step(loop)
        #expect(!loop.status.latched && loop.status.resets == 1)
    }

    /// QoS 1 delivers at least once: the broker may hand the same request over again (after a
    /// reconnect) long after it was answered. A duplicate of a released request must not release
    /// the next latch.
    @Test func when_an_accepted_request_is_delivered_again_after_a_new_stop_expect_the_new_latch_held() throws {
        let loop = try Self.stoppedRig()
        let request = "reset \(loop.status.latchSequence)"
        loop.publish(Self.reset("operator"), request)
        Self.step(loop)
        #expect(!loop.status.latched)
        loop.publish(Self.reset("operator"), request)  // a redelivery while running: nothing to do
        Self.step(loop)
        loop.publish(Self.stop, "stop")
        Self.step(loop)
        #expect(loop.status.latched)
        loop.publish(Self.reset("operator"), request)  // and again, now that a new stop holds
        Self.step(loop)
        #expect(loop.status.latched && loop.status.resets == 1 && loop.status.remoteStops == 2)
        let records = loop.runtime.remoteResets.records()
        #expect(records.map(\.outcome) == [.released, .refused, .refused])
        #expect(records.dropFirst().allSatisfy { $0.reason == .staleLatch })
    }

    /// A request refused while a cause persists is answered: its redelivery after the cause has
    /// gone must not release the latch behind the operator's back (they saw "refused" and left).
    @Test func when_a_refused_request_is_delivered_again_after_the_cause_clears_expect_no_release() throws {
        let loop = try Self.stoppedRig()
        loop.readingsFlow.store(false, ordering: .relaxed)  // the temperature reading goes stale
        #expect(loop.run(for: 10_000_000_000) { loop.status.causes.contains(.staleSensor) })
        let request = "reset \(loop.status.latchSequence)"
        loop.publish(Self.reset("operator"), request)
        Self.step(loop)
        #expect(loop.status.latched && loop.status.refusedResets == 1)
        loop.readingsFlow.store(true, ordering: .relaxed)
        #expect(loop.run(for: 10_000_000_000) { loop.status.causes.isEmpty })
        loop.publish(Self.reset("operator"), request)  // the redelivery
        Self.step(loop)
        #expect(loop.status.latched && loop.status.resets == 0)
        let records = loop.runtime.remoteResets.records()
        #expect(records.count == 2)
        #expect(records.first?.reason == .causesPersist && records.first?.causes.contains(.staleSensor) == true)
        #expect(records.first?.reasons.contains("stale-sensor") == true)
        #expect(records.last?.reason == .staleLatch)
        // The operator reads the number again and asks once more: released.
        loop.publish(Self.reset("operator"), "reset \(loop.status.latchSequence)")
        Self.step(loop)
        #expect(!loop.status.latched && loop.status.resets == 1)
    }

    /// A second stop while latched is a new stop state: a request sent for the first one (read
    /// before the second arrived) does not release the second.
    @Test func when_a_second_stop_arrives_while_latched_expect_a_request_for_the_first_one_refused() throws {
        let loop = try Self.stoppedRig()
        let first = loop.status.latchSequence
        loop.publish(Self.stop, "stop again")
        Self.step(loop)
        #expect(loop.status.latchSequence > first)
        loop.publish(Self.reset("operator"), "reset \(first)")
        Self.step(loop)
        #expect(loop.status.latched && loop.runtime.remoteResets.records().last?.reason == .staleLatch)
    }

    /// A stop and a request that arrive together: the stop is dispatched first (critical) and
    /// advances the number, so the request — sent before the sender could see the stop — names an
    /// older state and does not release it.
    @Test func when_a_request_arrives_with_a_stop_expect_the_stop_to_hold() throws {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml"))
        loop.run(until: 20_000_000_000)
        loop.publish(Self.reset("operator"), "reset \(loop.status.latchSequence)")
        loop.publish(Self.stop, "stop")
        Self.step(loop)
        #expect(loop.status.latched && loop.status.resets == 0 && loop.status.staleResetsIgnored == 1)
    }

    @Test func when_requests_are_retained_expect_them_ignored_and_recorded() throws {
        let loop = try Self.stoppedRig()
        loop.publish(Self.reset("operator"), "reset \(loop.status.latchSequence)", retained: true)
        Self.step(loop)
        #expect(loop.status.latched && loop.status.resets == 0)
        let r = try #require(loop.runtime.remoteResets.records().first)
        #expect(r.outcome == .ignored && r.reason == .retained && r.user == "operator")
    }

    /// Many requests at one instant, within each user's rate (two users, three each): the reset
    /// queue holds 4; the others are refused and recorded (`queue-full`), none is dropped unseen;
    /// only one can act.
    @Test func when_requests_flood_in_at_once_expect_each_recorded_and_one_acted_on() throws {
        let loop = try Self.stoppedRig { $0 = $0.replacingOccurrences(of: "reset_users: [operator]", with: "reset_users: [operator, supervisor]") }
        let latch = loop.status.latchSequence
        for i in 0..<6 { loop.publish(Self.reset(i % 2 == 0 ? "operator" : "supervisor"), "reset \(latch)") }
        Self.step(loop)
        #expect(!loop.status.latched && loop.status.resets == 1)
        let records = loop.runtime.remoteResets.records()
        #expect(records.count == 6)
        #expect(records.filter { $0.reason == .queueFull }.count == 2)
        #expect(records.filter { $0.outcome == .released }.count == 1)
        #expect(records.filter { $0.reason == .staleLatch }.count == 3)
        #expect(loop.runtime.remoteStopCounters.queueFull.load(ordering: .relaxed) == 2)
    }

    /// The records of the users in `reset_users` have their own 64: any number of other users'
    /// requests (a flood under many names, each within its rate) never pushes them out.
    @Test func when_other_users_fill_the_log_expect_the_authorised_users_records_kept() throws {
        let loop = try Self.stoppedRig()
        loop.publish(Self.reset("operator"), "reset 1")
        Self.step(loop)
        for i in 0..<100 {
            loop.publish(Self.reset("user\(i)"), "reset 1")
            loop.run(until: loop.rig.time + 500_000_000)
        }
        let all = loop.runtime.remoteResets.records()
        #expect(all.count == RemoteResetLog.capacity + 1)
        #expect(all.first?.user == "operator" && all.first?.sequence == 1 && all.first?.reason == .staleLatch)
        #expect(all.dropFirst().first?.sequence == 38 && all.last?.sequence == 101)
    }

    /// The log keeps the latest 64 records; a reader's cursor (`records(after:)`) sees only what
    /// is new, and a gap in the sequence numbers when it fell behind. (Half a second apart: each
    /// user's rate limit lets every one through.)
    @Test func the_log_is_bounded_and_readers_follow_it_by_sequence() throws {
        let loop = try Self.stoppedRig()
        for i in 0..<100 {
            loop.publish(Self.reset("user\(i)"), "reset 1")
            loop.run(until: loop.rig.time + 500_000_000)
        }
        let log = loop.runtime.remoteResets
        let all = log.records()
        #expect(all.count == RemoteResetLog.capacity && all.first?.sequence == 37 && all.last?.sequence == 100)
        #expect(all.last?.user == "user99" && log.latestSequence == 100)
        loop.publish(Self.reset("operator"), "reset \(loop.status.latchSequence)")
        Self.step(loop)
        let new = log.records(after: 100)
        #expect(new.count == 1 && new.first?.user == "operator" && new.first?.outcome == .released)
        #expect(log.records(after: 101).isEmpty)
    }

    /// Decisions of the control path are kept even when no reader comes for a long time: 40
    /// answered requests (two a second, the user's rate), the log read only at the end, every one
    /// there, in order.
    @Test func when_no_one_reads_the_log_for_many_requests_expect_every_decision_kept() throws {
        let loop = try Self.stoppedRig()
        for _ in 0..<40 {
            loop.publish(Self.reset("operator"), "reset \(loop.status.latchSequence)")
            loop.run(until: loop.rig.time + 500_000_000)
        }
        let records = loop.runtime.remoteResets.records()
        #expect(records.count == 40 && records.map(\.sequence) == Array(1...40))
        #expect(records.first?.outcome == .released && records.dropFirst().allSatisfy { $0.reason == .notLatched })
    }

    /// Without `reset_users` every remote request is refused: the stop can only be released by a
    /// reset key (the rig has none; `robotd check` warns).
    @Test func when_no_reset_users_are_configured_expect_every_request_refused() throws {
        let loop = try Self.stoppedRig { $0 = $0.replacingOccurrences(of: "    reset_users: [operator]", with: "") }
        loop.publish(Self.reset("operator"), "reset \(loop.status.latchSequence)")
        Self.step(loop)
        #expect(loop.status.latched && loop.runtime.remoteResets.records().first?.reason == .notAuthorised)
    }

    /// The robot starts latched (power-on) at a latch number of the run's own: the number it
    /// publishes releases it; a request kept from another run (`reset 1`, the number another runtime
    /// started at) does not, and neither does the bare number.
    @Test func when_the_robot_starts_latched_expect_a_random_latch_number_that_only_its_own_request_releases() throws {
        let edit: (inout String) -> Void = { $0 = $0.replacingOccurrences(of: "start_latched: false", with: "start_latched: true") }
        let other = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml", edit: edit))
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml", edit: edit))
        loop.run(until: 2_000_000_000)
        let latch = loop.status.latchSequence
        #expect(loop.status.latched && loop.status.latchCause == .powerOn)
        // Random in 1…2^40: two runs agree with a chance of about 1 in 10^12.
        #expect(latch != other.status.latchSequence && latch >= 1 && latch <= 1 << 40 && latch < RemoteStop.largestLatch)
        for request in ["reset 1", "reset \(other.status.latchSequence)", "\(latch)"] {
            loop.publish(Self.reset("operator"), request)
            Self.step(loop)
        }
        #expect(loop.status.latched && loop.status.latchSequence == latch && loop.status.staleResetsIgnored == 2)
        #expect(loop.runtime.remoteResets.records().map(\.reason) == [.staleLatch, .staleLatch, .noLatchNumber])
        loop.publish(Self.reset("operator"), "reset \(latch)")
        Self.step(loop)
        #expect(!loop.status.latched && loop.runtime.remoteResets.records().last?.latch == latch)
    }

    /// A one-shot stop (a dispatch stall, an actuator fault, a remote stop) while already latched
    /// at the same or a stricter category changes no latch epoch, but it is a new stop state: a
    /// request sent for the number read before it, dispatched after it, must not release the robot.
    @Test(arguments: ["dispatch-stall", "actuator-failure", "connection-lost", "remote-stop"])
    func when_a_stop_event_comes_while_latched_before_the_request_expect_the_request_stale(event: String) throws {
        let loop = try ConfiguredRigLoop(try Examples.configuration("iot-rig-sim.yaml") {
            $0 = $0.replacingOccurrences(of: "start_latched: false", with: "start_latched: true")
        })
        loop.run(until: 2_000_000_000)
        let latch = loop.status.latchSequence
        #expect(loop.status.latched && loop.status.latchCause == .powerOn)  // category 0: the strictest
        // The operator read `latch` and sent its reset; a stop event reaches the control path first.
        let now = Instant(nanoseconds: loop.rig.time)
        switch event {
        case "dispatch-stall": #expect(loop.runtime.report(.dispatchStall, at: now))
        case "actuator-failure": #expect(loop.runtime.reportActuatorFault(lostLink: false, at: now))
        case "connection-lost": #expect(loop.runtime.reportActuatorFault(lostLink: true, at: now))
        default: loop.publish(Self.stop, "stop")
        }
        loop.publish(Self.reset("operator"), "reset \(latch)")
        Self.step(loop)
        #expect(loop.status.latched && loop.status.resets == 0, "\(event)")
        #expect(loop.status.latchSequence != latch)
        #expect(loop.runtime.remoteResets.records().map(\.reason) == [.staleLatch], "\(event)")
        // The operator sees the new number and asks again: released (a one-shot leaves no cause).
        loop.publish(Self.reset("operator"), "reset \(loop.status.latchSequence)")
        Self.step(loop)
        #expect(!loop.status.latched && loop.status.resets == 1, "\(event)")
    }

    /// The reset takes effect when the control path acts on it, not when the request arrived: the
    /// instant the guard records (`world.lastReset`, the teleop deadman's enable edge) is the
    /// dispatch, so a deadman press between the two is no press after the reset. The record keeps
    /// the arrival.
    @Test func when_a_request_waits_before_its_dispatch_expect_the_reset_dated_at_the_dispatch() throws {
        let loop = try Self.stoppedRig()
        _ = loop.records
        let dispatch = loop.rig.time
        let arrival = dispatch - 60_000_000
        loop.publish(Self.reset("operator"), "reset \(loop.status.latchSequence)", arrival: arrival)
        Self.step(loop)
        #expect(!loop.status.latched && loop.status.resets == 1)
        let reset = try #require(loop.records.last { $0.kind == .reset })
        #expect(reset.at.nanoseconds == dispatch, "reset dated \(reset.at.nanoseconds), arrival \(arrival), dispatch \(dispatch)")
        #expect(loop.runtime.remoteResets.records().last?.at.nanoseconds == arrival)
    }
}
