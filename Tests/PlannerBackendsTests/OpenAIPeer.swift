import Foundation
import Testing
import TestSupport
@testable import PlannerBackends

/// Every test that measures time, one at a time: a deadline figure must not share the two cores
/// with another test's endless body. The suites below are nested in it (extensions).
@Suite(.serialized)
struct PlannerBackendsTimedTests {}

/// scripts/peers/openai_peer.py: an independent OpenAI-compatible server on a free loopback port,
/// each model name a scripted behaviour; it prints every request it receives as a JSON line.
final class OpenAIPeer {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/peers/openai_peer.py").path
    static let python = "/usr/bin/python3"
    static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: python) }

    let process: Subprocess
    let port: Int
    let baseURL: URL

    /// Starts the peer; `models`: model name → a step or a list of steps (see the script's usage).
    /// Waits by sleeping the task, never by blocking a thread of the cooperative pool (2 cores: the
    /// client's own timers and the router's work need them).
    static func start(_ models: [String: Any]) async throws -> OpenAIPeer {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: models), as: UTF8.self)
        let process = try Subprocess(python, [script, "--models", json, "--lifetime", "240"])
        for _ in 0..<1000 {
            if let line = process.stdout.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }),
               let port = Int(line.dropFirst("listening ".count).trimmingCharacters(in: .whitespaces)),
               let baseURL = URL(string: "http://127.0.0.1:\(port)/v1") {
                return OpenAIPeer(process: process, port: port, baseURL: baseURL)
            }
            if !process.process.isRunning { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        process.signal(SIGKILL)
        throw PeerError(text: "the peer did not start: \(process.stderr)")
    }

    private init(process: Subprocess, port: Int, baseURL: URL) {
        self.process = process
        self.port = port
        self.baseURL = baseURL
    }

    deinit { process.signal(SIGKILL) }

    struct PeerError: Error { var text: String }

    /// The requests received so far (for `model`, or all), in order.
    func requests(model: String? = nil) -> [[String: Any]] {
        process.jsonLines.filter { $0["event"] as? String == "request" && (model == nil || $0["model"] as? String == model) }
    }

    /// The "ended" line of request `n`, waiting for it up to `seconds`.
    func ended(_ n: Int, seconds: Double = 10) async -> [String: Any]? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .milliseconds(Int64(seconds * 1000)))
        while true {
            if let found = process.jsonLines.first(where: { $0["event"] as? String == "ended" && $0["n"] as? Int == n }) {
                return found
            }
            if clock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits (sleeping the task) until `condition` holds or `seconds` pass.
    static func eventually(seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .milliseconds(Int64(seconds * 1000)))
        while !condition() {
            if clock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    /// The chat messages of a recorded request.
    static func messages(_ request: [String: Any]) -> [(role: String, content: String)] {
        let body = request["body"] as? [String: Any]
        return (body?["messages"] as? [[String: Any]] ?? []).map { ($0["role"] as? String ?? "", $0["content"] as? String ?? "") }
    }

    func backend(_ name: String, model: String, dialect: ResponseFormatDialect = .jsonSchema,
                 maximumResponseBytes: Int = 256 * 1024, apiKey: APIKeySource = .none,
                 environment: [String: String] = [:]) throws -> OpenAICompatibleBackend {
        try OpenAICompatibleBackend(
            OpenAIBackendSettings(name: name, baseURL: baseURL, model: model, apiKey: apiKey, dialect: dialect,
                                  maximumResponseBytes: maximumResponseBytes),
            environment: environment)
    }
}

/// A small plan schema, as the planner would generate it (the shape matters only to the server).
let testSchema = #"""
{"type":"object","additionalProperties":false,"required":["steps"],"properties":{"steps":{"type":"array","maxItems":8,"items":{"type":"object","additionalProperties":false,"required":["ability","x","y"],"properties":{"ability":{"type":"string","enum":["goto","stop"]},"x":{"type":"number","minimum":-10,"maximum":10},"y":{"type":"number","minimum":-10,"maximum":10}}}}}}
"""#

let goodPlan = #"{"steps":[{"ability":"goto","x":2,"y":3}]}"#
/// Schema-valid in shape but outside the workspace: what the validator, not the grammar, must catch.
let unsafePlan = #"{"steps":[{"ability":"goto","x":40,"y":3}]}"#

func testRequest(goal: String = "go to 2,3", goalKind: String? = "goto") -> PlanRequest {
    PlanRequest(systemPrompt: "You plan for a rover. Abilities: goto(x, y), stop().", goal: goal, goalKind: goalKind,
                data: [PromptData(label: "world state", text: #"{"pose":{"x":0,"y":0}}"#)], schema: testSchema)
}

/// Elapsed seconds of `body`.
func timed<T>(_ body: () async throws -> T) async rethrows -> (T, Double) {
    let clock = ContinuousClock()
    let start = clock.now
    let value = try await body()
    return (value, (clock.now - start).inSeconds)
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    return sorted[sorted.count / 2]
}
