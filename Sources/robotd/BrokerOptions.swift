import AIOSRobot
import ArgumentParser
import Foundation
import RobotConfig

/// `--broker`, `--robot-id` and the credentials of `robotd run` and `robotd sim`: they override the
/// configuration file (one file, several instances: each with its own id and login). The password
/// never goes on the command line (`ps` shows it): a file, or the environment variable
/// ROBOTD_MQTT_PASSWORD, as `robotd echo mqtt` takes it.
///
/// `--robot-id` separates instances only through the default topic prefix (`robotd/<id>/`): a file
/// that fixes `mqtt.prefix` or the remote stop's topics would give every instance the same reset
/// topic (one reset request would release them all), so such a file is refused with `--robot-id`
/// unless `--prefix` moves the prefix too; fixed remote topics are refused with either flag.
struct BrokerOptions: ParsableArguments {
    static let passwordVariable = "ROBOTD_MQTT_PASSWORD"

    @Option(help: "The broker as HOST:PORT instead of the configuration's `mqtt.broker` (a configuration without `mqtt` gets one).")
    var broker: String?

    @Option(help: "The robot's id instead of the configuration's `robot.id`: its topics (robotd/ID/…) and its MQTT client id.")
    var robotId: String?

    @Option(help: "The topic prefix instead of the configuration's `mqtt.prefix`: every topic of this instance starts with it (needs `mqtt` or --broker).")
    var prefix: String?

    @Option(help: "MQTT user name instead of the configuration's `mqtt.username`.")
    var username: String?

    @Option(help: ArgumentHelp("A file holding the MQTT password (first line). Default: the configuration's; else ROBOTD_MQTT_PASSWORD, if set.",
                               valueName: "file"))
    var passwordFile: String?

    @Option(help: ArgumentHelp("CA certificate (PEM): TLS to the broker, instead of the configuration's `mqtt.ca_file`.", valueName: "file"))
    var caFile: String?

    func validate() throws {
        if let broker {
            do { _ = try BrokerAddress(broker) } catch { throw ValidationError("--broker: \(broker) is not HOST:PORT") }
        }
        if let id = robotId, !Self.isValidID(id) {
            throw ValidationError("--robot-id: `\(id)` has characters that cannot go into MQTT topics and file names (letters, digits, - and _)")
        }
        if let prefix {
            if prefix.contains("+") || prefix.contains("#") || prefix.hasPrefix("$") || prefix.contains("\u{0}") {
                throw ValidationError("--prefix: `\(prefix)` is not a topic prefix (no + or #, no NUL, not starting with $)")
            }
        }
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) { throw ValidationError("--ca-file: cannot read \(caFile)") }
        if let passwordFile, !FileManager.default.isReadableFile(atPath: passwordFile) {
            throw ValidationError("--password-file: cannot read \(passwordFile)")
        }
    }

    /// As `robotd check` has it for `robot.id`.
    static func isValidID(_ text: String) -> Bool {
        !text.isEmpty && text.unicodeScalars.allSatisfy {
            ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "-" || $0 == "_"
        }
    }

    /// The flags applied to `configuration`. `environment` is the process's (a parameter for tests).
    func apply(to configuration: inout RobotConfiguration,
               environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        try checkTopicsFollow(configuration)
        if let robotId {
            configuration.robot.id = robotId
            // A fixed client id would make two instances of one file knock each other off the
            // broker (it disconnects the older of two clients with the same id): the default
            // (robotd-<id>-<pid>) instead.
            configuration.mqtt?.clientID = nil
        }
        if let broker {
            if configuration.mqtt == nil { configuration.mqtt = MQTTSettings(broker: broker) } else { configuration.mqtt?.broker = broker }
        }
        guard var m = configuration.mqtt else {
            if username != nil || passwordFile != nil || caFile != nil || prefix != nil {
                throw ValidationError("--prefix, --username, --password-file and --ca-file need a broker: --broker HOST:PORT or an `mqtt` section")
            }
            return
        }
        if let prefix { m.prefix = prefix }
        if let username { m.username = username }
        if let passwordFile {
            m.passwordFile = passwordFile
            m.passwordEnv = nil
        } else if m.passwordFile == nil && m.passwordEnv == nil && m.username != nil && environment[Self.passwordVariable] != nil {
            m.passwordEnv = Self.passwordVariable
        }
        if let caFile { m.caFile = caFile }
        if m.username == nil && (m.passwordFile != nil || m.passwordEnv != nil) {
            throw ValidationError("a password without a user name: MQTT sends a password only with one (--username)")
        }
        configuration.mqtt = m
    }

    /// Refuses a file whose topics would not follow `--robot-id` or `--prefix`: two instances of it
    /// would share the remote stop and reset topics, and one reset request would release both.
    func checkTopicsFollow(_ configuration: RobotConfiguration) throws {
        guard robotId != nil || prefix != nil else { return }
        let flag = robotId != nil ? "--robot-id" : "--prefix"
        if case .configured(let e) = configuration.estop, let remote = e.remote {
            let fixed = [("estop.remote.stop_topic", remote.stopTopic), ("estop.remote.reset_topic", remote.resetTopic)]
                .compactMap { key, topic in topic.map { "\(key) (`\($0)`)" } }
            if !fixed.isEmpty {
                throw ValidationError("""
                    \(flag): the configuration fixes \(fixed.joined(separator: " and ")), which \(flag) does not move: every \
                    instance started from this file would share them, and one reset request would release them all. Leave \
                    them out of the file (they default to <prefix>estop and <prefix>estop/reset).
                    """)
            }
        }
        if robotId != nil, prefix == nil, let filePrefix = configuration.mqtt?.prefix {
            throw ValidationError("""
                --robot-id: the configuration sets mqtt.prefix (`\(filePrefix)`), which wins over the robot id in every topic: \
                every instance started from this file would share its topics, and one reset request would release them all. \
                Give each instance its own --prefix too, or leave mqtt.prefix out (the default is robotd/<robot id>/).
                """)
        }
    }
}
