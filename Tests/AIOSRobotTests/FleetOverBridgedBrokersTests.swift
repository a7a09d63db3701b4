import Foundation
import Glibc
import Testing
import TestSupport
import Transports

/// A fleet over an existing broker network (issue: robots outgrow one broker by bridging, never by a
/// home-made relay): two Mosquitto brokers, B bridged to A for `robotd/#` both ways (generated
/// configuration), three `robotd sim` rovers split across them (unique robot ids; each rover's
/// simulated devices are its own pty and FIFO; the extra instances at `--priority 0`: three SCHED_FIFO
/// dispatchers cannot share two cores). `robotd monitor` on A sees all three with their deadline
/// figures; a rover on B killed outright shows `offline` on A, by its last will across the bridge.
@Suite("A fleet on bridged brokers", .serialized, .enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
struct FleetOverBridgedBrokersTests {
    static func robots(_ text: String) -> [[String: Any]] {
        let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        return object?["robots"] as? [[String: Any]] ?? []
    }

    static func monitorOnce(_ broker: Int, seconds: Double = 20) throws -> (status: Int32?, robots: [[String: Any]], stderr: String) {
        let run = try Subprocess(builtProduct("robotd"), ["monitor", "--broker", "127.0.0.1:\(broker)", "--robot-id", "+",
                                                          "--once", "--json", "--timeout", String(seconds)])
        let status = run.wait(seconds: seconds + 20)
        return (status, robots(run.stdout), run.stderr)
    }

    @Test func when_three_rovers_share_two_bridged_brokers_expect_the_monitor_on_one_to_see_all_and_a_killed_one_offline() throws {
        let a = try MosquittoBroker()
        try a.start()
        defer { a.stop() }
        // B bridges everything under robotd/ to A and back (what a site broker does with a central one).
        let b = try MosquittoBroker(settings: ["allow_anonymous true",
                                               "connection fleet-bridge",
                                               "address 127.0.0.1:\(a.port)",
                                               "topic robotd/# both 1",
                                               "cleansession true",
                                               "restart_timeout 1"])
        try b.start()
        defer { b.stop() }

        var rovers: [Subprocess] = []
        defer {
            for r in rovers where r.process.isRunning {
                r.signal(SIGTERM)
                _ = r.wait(seconds: 15)
            }
        }
        for (index, port) in [a.port, b.port, b.port].enumerated() {
            var arguments = ["sim", "--world", "rover", "--seconds", "60", "--json", "--broker", "127.0.0.1:\(port)",
                             "--robot-id", "fleet-rover-\(index + 1)"]
            if index > 0 { arguments += ["--priority", "0"] }
            rovers.append(try Subprocess(builtProduct("robotd"), arguments))
        }

        // On A: all three, each online with its own deadline figures (the two on B through the bridge).
        var seen: [[String: Any]] = []
        #expect(waitUntil(seconds: 40) {
            guard let once = try? Self.monitorOnce(a.port, seconds: 10), once.status == 0 else { return false }
            seen = once.robots
            return Set(seen.compactMap { $0["id"] as? String }) == ["fleet-rover-1", "fleet-rover-2", "fleet-rover-3"]
                && seen.allSatisfy { $0["status"] as? String == "online" }
        }, "seen: \(seen.map { "\($0["id"] ?? "?")=\($0["status"] ?? "?")" }); rover 3: \(rovers[2].stderr.suffix(1500))")
        for robot in seen {
            let tasks = (robot["deadlines"] as? [String: Any])?["tasks"] as? [[String: Any]] ?? []
            let wander = tasks.first { $0["name"] as? String == "wander" }
            let releases = (wander?["since_start"] as? [String: Any])?["releases"] as? Int ?? 0
            #expect(releases > 0, "\(robot["id"] ?? "?"): no wander releases in \(tasks.map { $0["name"] ?? "?" })")
            let p99 = ((wander?["since_start"] as? [String: Any])?["response"] as? [String: Any])?["p99_us"] as? Double ?? 0
            #expect(p99 > 0, "\(robot["id"] ?? "?"): no response p99")
        }

        // Rover 3 (on B) dies without a word: B publishes its last will, the bridge carries it to A.
        rovers[2].signal(SIGKILL)
        _ = rovers[2].wait(seconds: 10)
        var third: [String: Any]?
        #expect(waitUntil(seconds: 40) {
            guard let once = try? Self.monitorOnce(a.port, seconds: 5) else { return false }
            third = once.robots.first { $0["id"] as? String == "fleet-rover-3" }
            return third?["status"] as? String == "offline"
        }, "rover 3 on A: \(third.map { "\($0)" } ?? "not seen")")
        // The others are still online.
        let after = try Self.monitorOnce(a.port, seconds: 10)
        for id in ["fleet-rover-1", "fleet-rover-2"] {
            #expect(after.robots.first { $0["id"] as? String == id }?["status"] as? String == "online", "\(id) after rover 3 died")
        }
    }
}
