import Codecs
import Testing
@testable import RobotSim

func hostHeartbeat(sequence: UInt8 = 0) -> [UInt8] {
    Frame.encode(type: Frame.MessageType.heartbeat.rawValue, sequence: sequence, payload: [])
}

@Suite("Simulated rover firmware: the host's heartbeats")
struct HostHeartbeatTests {
    /// A host that drives at 50 Hz (heartbeat + both wheels each cycle) until `until`.
    func host(_ rover: RoverSimulation, from: Int64, until: Int64, heartbeats: Bool = true, commands: Bool = true,
              received: inout Received) {
        var t = from
        while t < until {
            var bytes: [UInt8] = []
            if heartbeats { bytes += hostHeartbeat() }
            if commands { bytes += wheelCommand(0, 8) + wheelCommand(1, 8) }
            rover.receive(bytes)
            t += 20_000_000
            drive(rover, to: t, into: &received)
        }
    }

    @Test func when_the_host_goes_silent_expect_both_wheels_de_energised_within_the_timeout_and_one_step() {
        let config = RoverSimulationConfig()
        let timeout = try! #require(config.hostHeartbeatTimeout)
        let rover = RoverSimulation(config: config)
        var received = Received()
        host(rover, from: 0, until: second, received: &received)
        // The last cycle's frames arrived at 980 ms; then nothing (a SIGKILLed or frozen host).
        let last: Int64 = 980_000_000
        drive(rover, to: last + timeout, into: &received)
        let before = rover.snapshot()
        #expect(before.leftEnergised && before.rightEnergised)
        drive(rover, to: last + timeout + config.physicsStep, into: &received)
        let after = rover.snapshot()
        #expect(!after.leftEnergised && !after.rightEnergised)
        #expect(after.firmware.heartbeatTrips == 1)
        #expect(after.firmware.watchdogTrips == 0)  // caught before the 500 ms command watchdog
        #expect(after.firmware.hostHeartbeats == 50)
    }

    @Test func when_commands_continue_without_heartbeats_expect_them_refused_until_heartbeats_resume() {
        let rover = RoverSimulation()
        var received = Received()
        host(rover, from: 0, until: second, received: &received)
        // A host whose control cycle stopped while something else still writes commands.
        host(rover, from: second, until: 2 * second, heartbeats: false, received: &received)
        let refused = rover.snapshot()
        #expect(!refused.leftEnergised && !refused.rightEnergised)
        #expect(refused.firmware.heartbeatTrips == 1)
        // 50 cycles; those within the 250 ms after the last heartbeat were still applied.
        #expect(refused.firmware.commandsIgnoredNoHeartbeat >= 2 * 35)
        // De-energising is always obeyed.
        rover.receive(wheelCommand(0, 0, deenergize: true))
        #expect(rover.snapshot().firmware.deenergiseCommands == 1)
        host(rover, from: 2 * second, until: 3 * second, received: &received)
        let resumed = rover.snapshot()
        #expect(resumed.leftEnergised && resumed.rightEnergised)
        #expect(resumed.firmware.heartbeatTrips == 1)
    }

    @Test func when_heartbeats_continue_expect_no_trip() {
        let rover = RoverSimulation()
        var received = Received()
        host(rover, from: 0, until: 5 * second, received: &received)
        let s = rover.snapshot()
        #expect(s.leftEnergised && s.rightEnergised)
        #expect(s.firmware.heartbeatTrips == 0 && s.firmware.commandsIgnoredNoHeartbeat == 0)
        #expect(s.firmware.hostHeartbeats == 250)
    }

    @Test func when_the_host_never_sent_a_heartbeat_or_the_check_is_off_expect_commands_alone_enough() {
        let unarmed = RoverSimulation()
        var received = Received()
        host(unarmed, from: 0, until: 2 * second, heartbeats: false, received: &received)
        #expect(unarmed.snapshot().leftEnergised && unarmed.snapshot().firmware.heartbeatTrips == 0)

        var config = RoverSimulationConfig()
        config.hostHeartbeatTimeout = nil
        let off = RoverSimulation(config: config)
        host(off, from: 0, until: second, received: &received)
        host(off, from: second, until: 2 * second, heartbeats: false, received: &received)
        #expect(off.snapshot().leftEnergised && off.snapshot().firmware.heartbeatTrips == 0)
    }
}
