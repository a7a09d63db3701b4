import Codecs
import Transports
import Foundation
import Glibc
import RTScheduler
import SafetyGuard
import Synchronization
import TestSupport
import Testing
@testable import Actuators

/// Builds a guard for two wheel channels and a heater and returns approved commands from it —
/// the only way these tests (like any module) can obtain them.
struct Rig {
    var guardian: SafetyGuard
    init() throws {
        guardian = try SafetyGuard(configuration: GuardConfiguration(channels: [
            ChannelConfiguration(name: "left", limits: .continuous(.velocity(maxVelocity: 1))),
            ChannelConfiguration(name: "right", limits: .continuous(.velocity(maxVelocity: 1))),
            ChannelConfiguration(name: "heater", limits: .discrete(DiscreteLimits()), isMotion: false),
        ]))
    }

    mutating func approve(_ channel: Int, _ value: CommandValue, at ms: Int64 = 1) throws -> ApprovedCommand {
        let t = Instant(nanoseconds: ms * 1_000_000)
        let c = Command(channel: ChannelID(index: channel), value: value, origin: .policy, issuedAt: t, validUntil: t + .seconds(1))
        return try #require(guardian.check(c, now: t).approved)
    }
}

final class FaultLog: Sendable {
    let faults = Mutex<[ActuatorSet.Fault]>([])
    func append(_ f: ActuatorSet.Fault) { faults.withLock { $0.append(f) } }
    var all: [ActuatorSet.Fault] { faults.withLock { $0 } }
}

@Suite("Actuators: lifecycle, safe states on failure, disconnect and signals", .serialized)
struct ActuatorTests {
    @Test func when_started_expect_safe_state_first_and_commands_accepted_only_while_active() throws {
        var rig = try Rig()
        let wheels = RecordingBackend(name: "wheels", channels: [ChannelID(index: 0), ChannelID(index: 1)])
        let set = try ActuatorSet(seal: rig.guardian.seal, backends: [wheels], clock: VirtualClock())
        let command = try rig.approve(0, .continuous(0.4))
        #expect(set.write(command) == .refused)  // unconfigured
        set.start()
        #expect(set.state(of: "wheels") == .active)
        #expect(set.write(command) == .written)
        #expect(wheels.entries == [.safeState, .command(command)])
        set.safeStop(reason: "test")
        #expect(set.write(command) == .refused)
        #expect(wheels.entries.last == .safeState)
        #expect(set.refused.load(ordering: .relaxed) == 2)
    }

    @Test func when_a_write_fails_expect_safe_state_fault_reported_and_inactive() throws {
        var rig = try Rig()
        let wheels = RecordingBackend(name: "wheels", channels: [ChannelID(index: 0), ChannelID(index: 1)])
        let heater = RecordingBackend(name: "heater", channels: [ChannelID(index: 2)])
        let log = FaultLog()
        let set = try ActuatorSet(seal: rig.guardian.seal, backends: [wheels, heater], clock: VirtualClock()) { log.append($0) }
        set.start()
        wheels.setFailing(true)
        let outcome = set.write(try rig.approve(0, .continuous(0.4)))
        guard case .failed(let error) = outcome else { Issue.record("expected failure, got \(outcome)"); return }
        #expect(error.code == .writeFailed && error.errno == 5)
        #expect(wheels.entries.last == .safeState)
        #expect(log.all.count == 1 && log.all.first?.safeStateApplied == true && log.all.first?.backend == "wheels")
        #expect(set.state(of: "wheels") == .inactive)
        // The failed back end refuses until reactivated (from its safe state); the other carries on.
        wheels.setFailing(false)
        #expect(set.write(try rig.approve(0, .continuous(0.1), at: 2)) == .refused)
        #expect(set.write(try rig.approve(2, .discrete(1), at: 2)) == .written)
        #expect(set.reactivate("wheels"))
        #expect(wheels.entries.suffix(2) == [.safeState, .safeState])
        #expect(set.write(try rig.approve(0, .continuous(0.1), at: 3)) == .written)
    }

    @Test func when_link_drops_expect_disconnected_fault_and_no_reactivation_until_it_is_back() throws {
        var rig = try Rig()
        let wheels = RecordingBackend(name: "wheels", channels: [ChannelID(index: 0)])
        let log = FaultLog()
        let set = try ActuatorSet(seal: rig.guardian.seal, backends: [wheels], clock: VirtualClock()) { log.append($0) }
        set.start()
        wheels.setConnected(false)
        let outcome = set.write(try rig.approve(0, .continuous(0.2)))
        #expect(outcome == .failed(ActuatorError(.disconnected, backend: "wheels")))
        #expect(log.all.first?.error.code == .disconnected)
        #expect(!set.reactivate("wheels"))
        wheels.setConnected(true)
        #expect(set.reactivate("wheels"))
        #expect(wheels.entries.last == .safeState)  // back from a disconnect: safe state before anything else
    }

    @Test func when_sigterm_or_sigint_arrives_expect_every_actuator_in_its_safe_state() throws {
        for number in [SIGTERM, SIGINT] {
            var rig = try Rig()
            let wheels = RecordingBackend(name: "wheels", channels: [ChannelID(index: 0), ChannelID(index: 1)])
            let heater = RecordingBackend(name: "heater", channels: [ChannelID(index: 2)])
            let set = try ActuatorSet(seal: rig.guardian.seal, backends: [wheels, heater], clock: VirtualClock())
            set.start()
            set.write(try rig.approve(0, .continuous(0.7)))
            set.write(try rig.approve(2, .discrete(1)))
            let received = DispatchSemaphore(value: 0)
            // The watcher thread reads the self-pipe; the signal may land on any thread.
            let got = Atomic<Int32>(0)
            let handler = SafeStopOnSignals(actuators: set) { signal in
                got.store(signal, ordering: .relaxed)
                received.signal()
            }
            kill(getpid(), number)
            #expect(received.wait(timeout: .now() + 5) == .success)
            handler.cancel()
            #expect(got.load(ordering: .relaxed) == number)
            #expect(wheels.entries.last == .safeState)
            #expect(heater.entries.last == .safeState)
            #expect(set.state(of: "wheels") == .finalized)
        }
    }

    @Test func when_channels_overlap_between_back_ends_expect_a_configuration_error() throws {
        let rig = try Rig()
        #expect(throws: ActuatorError.self) {
            try ActuatorSet(seal: rig.guardian.seal, backends: [RecordingBackend(name: "a", channels: [ChannelID(index: 0)]),
                                                                RecordingBackend(name: "b", channels: [ChannelID(index: 0)])],
                            clock: VirtualClock())
        }
    }
}

@Suite("Serial and MQTT back ends")
struct BackendTests {
    /// The serial back end's bytes, read back from a pipe by the shared frame decoder.
    @Test func when_serial_backend_writes_expect_motor_frames_on_the_wire() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer { close(fds[0]) }
        var rig = try Rig()
        let writer = FileDescriptorWriter(fd: fds[1])
        let backend = SerialFrameBackend(name: "drive", mappings: [
            .init(channel: ChannelID(index: 0), motor: 1, mode: .velocity),
            .init(channel: ChannelID(index: 1), motor: 2, mode: .velocity),
        ], writer: writer)
        try backend.write(try rig.approve(0, .continuous(0.5)), token: DeviceWriteToken())
        try backend.write(try rig.approve(1, .continuous(-0.25)), token: DeviceWriteToken())
        try backend.applySafeState(token: DeviceWriteToken())
        close(fds[1])
        var bytes = [UInt8](repeating: 0, count: 4096)
        let n = read(fds[0], &bytes, bytes.count)
        var decoder = FrameDecoder()
        var messages: [MotorCommandMessage] = []
        var sequences: [UInt8] = []
        decoder.feed(bytes.prefix(max(0, n))) { frame in
            #expect(frame.type == Frame.MessageType.motorCommand.rawValue)
            sequences.append(frame.sequence)
            if let m = MotorCommandMessage(payload: frame.payload) { messages.append(m) }
        }
        #expect(messages == [
            MotorCommandMessage(channel: 1, mode: .velocity, deenergize: false, value: 0.5),
            MotorCommandMessage(channel: 2, mode: .velocity, deenergize: false, value: -0.25),
            MotorCommandMessage(channel: 1, mode: .velocity, deenergize: true, value: 0),
            MotorCommandMessage(channel: 2, mode: .velocity, deenergize: true, value: 0),
        ])
        #expect(sequences == [1, 2, 3, 4])
        #expect(decoder.framesRejected == 0)
    }

    @Test func when_the_far_end_closes_expect_disconnected_error() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        signal(SIGPIPE, SIG_IGN)
        close(fds[0])
        defer { close(fds[1]) }
        var rig = try Rig()
        let backend = SerialFrameBackend(name: "drive", mappings: [.init(channel: ChannelID(index: 0), motor: 1, mode: .velocity)],
                                         writer: FileDescriptorWriter(fd: fds[1]))
        #expect(throws: ActuatorError(.disconnected, backend: "drive", errno: EPIPE)) {
            try backend.write(try rig.approve(0, .continuous(0.5)), token: DeviceWriteToken())
        }
        #expect(!backend.isConnected)
    }

    final class RecordingPublisher: MQTTPublishing {
        let messages = Mutex<[(String, String, Bool)]>([])
        let up = Atomic<Bool>(true)
        var isConnected: Bool { up.load(ordering: .relaxed) }
        func publish(topic: String, payload: [UInt8], qos: Int, retain: Bool) throws {
            guard isConnected else { throw ActuatorError(.disconnected, backend: "broker") }
            messages.withLock { $0.append((topic, String(decoding: payload, as: UTF8.self), retain)) }
        }
    }

    @Test func when_mqtt_backend_writes_expect_rendered_template_on_the_topic() throws {
        var rig = try Rig()
        let publisher = RecordingPublisher()
        let backend = MQTTBackend(name: "rig", routes: [
            .init(channel: ChannelID(index: 2), name: "heater", topic: "rig/heater/set", template: #"{"state":"{value}","id":"{channel}"}"#,
                  stateNames: ["OFF", "ON"], safeValue: .discrete(0), retain: true),
            .init(channel: ChannelID(index: 0), name: "fan", topic: "rig/fan/duty", safeValue: .continuous(0)),
        ], client: publisher)
        try backend.write(try rig.approve(2, .discrete(1)), token: DeviceWriteToken())
        try backend.write(try rig.approve(0, .continuous(0.75)), token: DeviceWriteToken())
        try backend.applySafeState(token: DeviceWriteToken())
        let got = publisher.messages.withLock { $0 }.map { "\($0.0) \($0.1) \($0.2)" }
        #expect(got == [
            #"rig/heater/set {"state":"ON","id":"heater"} true"#,
            "rig/fan/duty 0.75 false",
            #"rig/heater/set {"state":"OFF","id":"heater"} true"#,
            "rig/fan/duty 0 false",
        ])
        publisher.up.store(false, ordering: .relaxed)
        #expect(!backend.isConnected)
    }

    @Test func when_the_guard_rejects_expect_nothing_to_hand_to_an_actuator() throws {
        var rig = try Rig()
        let t = Instant(nanoseconds: 5_000_000)
        let stale = Command(channel: ChannelID(index: 0), value: .continuous(0.3), origin: .planner, issuedAt: .zero, validUntil: .zero)
        let verdict = rig.guardian.check(stale, now: t)
        #expect(verdict == .rejected(.stale))
        #expect(verdict.approved == nil)  // no ApprovedCommand exists, so ActuatorSet.write cannot be called
    }
}

/// Session 8, L3, where the guard sees it: a broker that answers (CONNACK, PINGRESP) but never
/// acknowledges a PUBLISH (scripts/peers/refusing_broker.py) leaves the channel's one outstanding
/// message unconfirmed for ever, and every later command would wait behind it while `write`
/// succeeds (a heater left at its last state). Past the client's confirmation limit (1 s here) the
/// channel's next command fails the back end as stalled: the set reports the fault (the runtime
/// hands it to the guard: `actuator-failure`, a stop), applies the safe state and refuses commands
/// until the back end is reactivated.
@Suite("MQTT back end: a channel whose commands are never confirmed fails closed", .serialized)
struct MQTTStuckChannelTests {
    @Test func when_the_broker_never_confirms_expect_the_back_end_failed_as_stalled_past_the_limit() throws {
        let peer = try MinimalBroker(["--refusals", "0"])
        defer { peer.stop() }
        var rig = try Rig()
        let client = try MQTTClient(options: MQTTOptions(port: peer.port, clientID: "stuck-channel-\(getpid())", keepaliveSeconds: 60,
                                                         maxQueuedMessages: 1000, commandConfirmationSeconds: 1)) { _ in }
        let backend = MQTTBackend(name: "relays", routes: [
            .init(channel: ChannelID(index: 2), name: "heater", topic: "rig/heater/set", stateNames: ["OFF", "ON"], safeValue: .discrete(0), qos: 1),
        ], client: client)
        let log = FaultLog()
        let set = try ActuatorSet(seal: rig.guardian.seal, backends: [backend], clock: VirtualClock(start: Instant(nanoseconds: 1_000_000)),
                                  mode: .inline, onFault: log.append)
        try client.start()
        defer { client.stop() }
        #expect(waitUntil { client.isConnected })
        set.start()  // the safe state first: OFF, outstanding from now on
        #expect(client.queuedMessages == 1)
        // Accepted, and waiting behind OFF: what the channel did for ever before.
        #expect(set.write(try rig.approve(2, .discrete(1))) == .written)
        #expect(client.queuedMessages == 1 && log.all.isEmpty)

        #expect(waitUntil(seconds: 5) { client.counters.unconfirmedCommands.load(ordering: .relaxed) == 1 })
        let outcome = set.write(try rig.approve(2, .discrete(1), at: 2))
        guard case .failed(let error) = outcome else {
            Issue.record("the stuck channel's next command was not refused: \(outcome)")
            return
        }
        #expect(error.code == .stalled)
        #expect(log.all.count == 1 && log.all.first?.error.code == .stalled && log.all.first?.safeStateApplied == true)
        #expect(set.state(of: "relays") == .inactive)
        #expect(set.write(try rig.approve(2, .discrete(1), at: 3)) == .refused)
    }
}
