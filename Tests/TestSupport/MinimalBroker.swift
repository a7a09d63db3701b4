import Foundation
import Glibc

/// scripts/peers/refusing_broker.py, a minimal MQTT 3.1.1 broker of the tests' own: it refuses
/// subscriptions on its first connections (`--refusals N`), never acknowledges a PUBLISH, can
/// close its first connection after a while (`--drop-first-after S`) and answer the SUBSCRIBEs of
/// later connections late (`--suback-delay S`).
public struct MinimalBroker {
    public let process: Subprocess
    public let port: Int

    public init(_ arguments: [String]) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/peers/refusing_broker.py").path
        process = try Subprocess("/usr/bin/python3", [script] + arguments)
        guard process.waitFor("listening"),
              let port = process.stdout.split(separator: " ").last.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else {
            process.signal(SIGKILL)
            throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "refusing_broker.py did not start: \(process.stderr)"])
        }
        self.port = port
    }

    public func stop() {
        process.signal(SIGKILL)
        _ = process.wait(seconds: 5)
    }
}
