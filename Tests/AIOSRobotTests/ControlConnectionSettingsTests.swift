import AIOSRobot
import Foundation
import RobotConfig
import Testing
import TestSupport
import Transports

/// `mqtt.command_confirmation_s` reaches the control connection that carries the `mqtt`
/// actuators' commands (the limit itself is tested on the client: MQTTStuckChannelTests,
/// MQTTLedgerTests); absent, the client's default of three keep-alives holds.
@Suite("The control connection takes mqtt.command_confirmation_s")
struct ControlConnectionSettingsTests {
    @Test(arguments: [nil, 1.5])
    func the_confirmation_limit_of_the_file_is_the_control_connections(seconds: Double?) throws {
        let directory = try temporaryDirectory("robotd-confirmation")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = try Examples.temporaryCopy("iot-rig-sim.yaml", in: directory) { text in
            if let seconds { text = text.replacingOccurrences(of: "  keepalive_s: 5\n", with: "  keepalive_s: 5\n  command_confirmation_s: \(seconds)\n") }
        }
        #expect(configuration.mqtt?.commandConfirmationS == seconds)
        let daemon = try RobotDaemon(configuration: configuration, options: RobotDaemon.Options()) { _ in }
        let control = try #require(daemon.mqtt, "the rig's relays use the broker: a control connection")
        #expect(control.options.commandConfirmationSeconds == seconds)
        #expect(control.options.keepaliveSeconds == 5)
    }
}
