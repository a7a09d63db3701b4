import Foundation
import Glibc
import TestSupport
import Testing
import Transports

/// `robotd sim` and its broker (§7 flags): without one it starts its own Mosquitto and says where,
/// so that a monitor can be pointed at it; with `--broker` and a login it uses that broker (the
/// simulated rig and robotd both logged in), `--robot-id` naming the topics; bad flags are usage
/// errors in words.
@Suite("robotd sim: its own broker, or --broker with a login", .serialized,
       .enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
struct SimBrokerCommandTests {
    /// `broker: mosquitto on 127.0.0.1:PORT (pid N)` → (PORT, N).
    static func announced(_ stderr: String) -> (port: Int, pid: Int32)? {
        guard let line = stderr.split(separator: "\n").first(where: { $0.hasPrefix("broker: mosquitto on 127.0.0.1:") }) else { return nil }
        let words = line.split(separator: " ")
        guard words.count == 6, let port = Int(words[3].split(separator: ":").last ?? ""),
              let pid = Int32(words[5].dropLast()) else { return nil }
        return (port, pid)
    }

    @Test func when_the_rover_runs_without_a_broker_expect_one_of_its_own_announced_and_reachable_until_the_end() throws {
        let sim = try Subprocess(builtProduct("robotd"), ["sim", "--world", "rover", "--seconds", "4", "--priority", "0"])
        #expect(sim.waitFor("broker: mosquitto on 127.0.0.1:", inStandardError: true), "\(sim.stderr)")
        let (port, pid) = try #require(Self.announced(sim.stderr), "\(sim.stderr)")
        // A monitor can connect to it while the run lasts.
        let monitor = try MQTTClient(options: MQTTOptions(port: port, clientID: "sim-broker-test-\(getpid())")) { _ in }
        try monitor.start()
        #expect(waitUntil { monitor.isConnected })
        monitor.stop()
        #expect(sim.wait(seconds: 30) == 0, "\(sim.stderr)")
        // Stopped with the run.
        #expect(waitUntil(seconds: 5) { kill(pid, 0) != 0 })
        #expect(!MosquittoBroker.accepts(port: port))
    }

    @Test func when_the_rig_runs_on_a_given_broker_with_a_login_expect_no_broker_of_its_own_and_its_topics_named_by_robot_id() throws {
        let directory = try temporaryDirectory("robotd-sim-broker")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let broker = try BrokerACLTests.broker(in: directory)
        defer { broker.stop() }
        try "rig-2-demo-password\n".write(toFile: directory + "/password", atomically: true, encoding: .utf8)
        let sim = try Subprocess(builtProduct("robotd"), ["sim", "--world", "iot-rig", "--json", "--seconds", "7", "--priority", "0",
                                                          "--broker", "127.0.0.1:\(broker.port)", "--robot-id", "rig-2",
                                                          "--username", "rig-2", "--password-file", directory + "/password"])
        #expect(sim.waitFor("broker: 127.0.0.1:\(broker.port)", inStandardError: true), "\(sim.stderr)")
        #expect(sim.waitFor("\"links_up\":true"), "\(sim.stdout)\n\(sim.stderr)")
        let operatorClient = try BrokerACLTests.Client("operator", port: broker.port)
        #expect(waitUntil { operatorClient.mqtt.isConnected })
        try operatorClient.publish("robotd/rig-2/estop", "stop")
        #expect(sim.wait(seconds: 30) == 0, "\(sim.stderr)")
        #expect(!sim.stderr.contains("broker: mosquitto on"))
        let statuses = sim.jsonLines.filter { $0["kind"] as? String == "status" }
        // The simulated rig's devices are under sim/rig/, iot-rig-sim's alone in the example ACL:
        // rig-2's login reads none of them, so no reading ever reached it and the rig held.
        #expect(!statuses.isEmpty && statuses.allSatisfy { ($0["sensors"] as? [String: Any])?["temperature"] as? NSNull != nil }, "\(sim.stdout)")
        let summary = try #require(sim.jsonLines.last)
        #expect(summary["latched"] as? Bool == true && summary["latch_cause"] as? String == "remote-stop" && summary["remote_stops"] as? Int == 1,
                "\(sim.stdout)")
    }

    @Test(arguments: [
        (["--robot-id", "rig 9"], "--robot-id: `rig 9` has characters"),
        (["--broker", "localhost"], "--broker: localhost is not HOST:PORT"),
        (["--password-file", "/nonexistent/password"], "--password-file: cannot read /nonexistent/password"),
        (["--broker", "127.0.0.1:1883", "--password-file", "/etc/hostname"], "a password without a user name"),
    ])
    func when_a_connection_flag_is_wrong_expect_a_usage_error_in_words(flags: [String], words: String) throws {
        for command in [["sim", "--world", "rover", "--seconds", "1"], ["run", "--config", Examples.folder.appendingPathComponent("rover-sim.yaml").path, "--seconds", "1"]] {
            let process = try Subprocess(builtProduct("robotd"), command + flags)
            #expect(process.wait(seconds: 20) != 0)
            #expect(process.stderr.contains(words), "\(command[0]): \(process.stderr)")
        }
    }
}
