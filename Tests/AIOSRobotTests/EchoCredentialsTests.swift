import Foundation
import TestSupport
import Testing
import Transports

/// `robotd echo mqtt` against a broker that wants a login: the password comes from a file or the
/// environment, never the command line; a wrong one is refused by the broker and said in words.
@Suite("robotd echo mqtt: credentials from a file or the environment", .serialized,
       .enabled(if: MosquittoBroker.isInstalled && FileManager.default.isExecutableFile(atPath: "/usr/bin/mosquitto_passwd"), "mosquitto is not installed"))
struct EchoCredentialsTests {
    /// A broker whose only user is `robot` with password `s3cret`.
    static func broker(in folder: String) throws -> MosquittoBroker {
        let passwords = folder + "/passwd"
        let tool = Process()
        tool.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_passwd")
        tool.arguments = ["-b", "-c", passwords, "robot", "s3cret"]
        try tool.run()
        tool.waitUntilExit()
        let broker = try MosquittoBroker(settings: ["allow_anonymous false", "password_file \(passwords)"])
        try broker.start()
        return broker
    }

    static func publish(_ broker: MosquittoBroker, password: String) throws {
        let client = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "echo-credentials-publisher",
                                                         username: "robot", password: password)) { _ in }
        try client.start()
        defer { client.stop() }
        for _ in 0..<60 where !client.isConnected { usleep(50_000) }
        for _ in 0..<40 {
            try? client.publish(topic: "plant/1/temp", payload: Array("21.5".utf8), qos: 0, retain: false)
            usleep(100_000)
        }
    }

    @Test func when_the_password_comes_from_a_file_expect_the_messages() throws {
        let folder = try temporaryDirectory()
        let broker = try Self.broker(in: folder)
        defer { broker.stop() }
        try "s3cret\n".write(toFile: folder + "/password", atomically: true, encoding: .utf8)
        let echo = try Subprocess(builtProduct("robotd"), ["echo", "mqtt", "--broker", "127.0.0.1:\(broker.port)", "--username", "robot",
                                                          "--password-file", folder + "/password", "--count", "1", "--timeout", "8", "plant/+/temp"])
        try Self.publish(broker, password: "s3cret")
        #expect(echo.wait(seconds: 15) == 0, "\(echo.stderr)")
        #expect(echo.stdout.contains("21.5"))
    }

    @Test func when_the_password_comes_from_the_environment_expect_the_messages() throws {
        let folder = try temporaryDirectory()
        let broker = try Self.broker(in: folder)
        defer { broker.stop() }
        setenv("ROBOTD_MQTT_PASSWORD", "s3cret", 1)
        defer { unsetenv("ROBOTD_MQTT_PASSWORD") }
        let echo = try Subprocess(builtProduct("robotd"), ["echo", "mqtt", "--broker", "127.0.0.1:\(broker.port)", "--username", "robot",
                                                          "--count", "1", "--timeout", "8", "plant/+/temp"])
        try Self.publish(broker, password: "s3cret")
        #expect(echo.wait(seconds: 15) == 0, "\(echo.stderr)")
        #expect(echo.stdout.contains("21.5"))
    }

    @Test func when_the_password_is_wrong_expect_a_refusal_in_words_and_a_failed_exit() throws {
        let folder = try temporaryDirectory()
        let broker = try Self.broker(in: folder)
        defer { broker.stop() }
        try "wrong\n".write(toFile: folder + "/password", atomically: true, encoding: .utf8)
        let echo = try Subprocess(builtProduct("robotd"), ["echo", "mqtt", "--broker", "127.0.0.1:\(broker.port)", "--username", "robot",
                                                          "--password-file", folder + "/password", "--timeout", "3", "plant/+/temp"])
        #expect(echo.wait(seconds: 15) == 1)
        #expect(echo.stderr.lowercased().contains("not authori"), "\(echo.stderr)")
    }

    @Test func when_a_password_is_given_inline_expect_a_usage_error() throws {
        let echo = try Subprocess(builtProduct("robotd"), ["echo", "mqtt", "--password", "s3cret", "t"])
        #expect(echo.wait(seconds: 10) != 0)
    }
}
