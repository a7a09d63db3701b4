import AIOSRobot
import ArgumentParser
import Foundation
import Glibc
import Transports

/// How a command reaches a broker (`robotd echo mqtt`, `robotd monitor`): its address, a login and
/// TLS. The password comes from a file or the environment, never the command line.
struct MQTTConnectionOptions: ParsableArguments {
    @Option(help: "Broker as HOST:PORT.")
    var broker: String = "127.0.0.1:1883"

    @Option(help: "User name.") var username: String?
    @Option(help: "A file holding the password (never on the command line, where ps shows it). Default: the environment variable ROBOTD_MQTT_PASSWORD, if set.")
    var passwordFile: String?
    @Option(help: "CA file (PEM) for TLS.") var caFile: String?

    func validate() throws {
        guard MQTTOptions.parseBroker(broker) != nil else { throw ValidationError("--broker must be HOST:PORT") }
    }

    /// The client's options, with the password read now (`<name>-<pid>` as the client id: two
    /// commands side by side must not share one, or the broker drops the older).
    func options(clientName: String) throws -> MQTTOptions {
        guard let (host, port) = MQTTOptions.parseBroker(broker) else { throw ValidationError("--broker must be HOST:PORT") }
        let environment = passwordFile == nil && ProcessInfo.processInfo.environment["ROBOTD_MQTT_PASSWORD"] != nil ? "ROBOTD_MQTT_PASSWORD" : nil
        let password: String?
        do {
            password = try MQTTPassword.read(environment: environment, file: passwordFile)
        } catch {
            throw ValidationError("\(error)")
        }
        return MQTTOptions(host: host, port: port, clientID: "\(clientName)-\(getpid())", username: username, password: password,
                           caFile: caFile)
    }
}
