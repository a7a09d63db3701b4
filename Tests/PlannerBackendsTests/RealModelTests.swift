import AIOSRobot
import Foundation
import Planner
import PlannerBackends
import RobotConfig
import Synchronization
import Testing
import TestSupport

// The planner against a real language model (issue 11 §8, docs/local-model.md): SmolLM2-135M-Instruct
// behind llama-cpp-python's server, set up by scripts/setup-model.sh (scripts/test.sh runs it). It
// asserts the path — request, HTTP 200, constrained answer, decoding, the validator's verdict, the
// rejection fed back, the fallback to the built-in planner, who answered and how fast — never the
// model's wisdom: a 135M model's plan may well be refused.

extension PlannerBackendsTimedTests {
    /// One test, serialized with the other timed suites of this target: the model takes both cores
    /// while it answers. `scripts/test.sh` runs every test one at a time (`--no-parallel`) and the
    /// server lives only inside this test, so no timing test ever shares the machine with it.
    @Suite("Real model", .serialized)
    struct RealModelTests {
        @Test(.enabled(if: LocalModel.setupProblem == nil || LocalModel.inCI, Comment(rawValue: LocalModel.skipReason)),
              .timeLimit(.minutes(10)))
        func when_the_planner_asks_the_local_model_expect_answer_verdict_and_fallback_recorded() async throws {
            if let problem = LocalModel.setupProblem {
                // Only in CI (elsewhere the trait skips): a model that cannot be set up is a failure there.
                Issue.record("CI=true and \(problem)")
                return
            }
            let clock = ContinuousClock()
            let startedAt = clock.now
            let server: ModelServer
            do {
                server = try await ModelServer.start()
            } catch {
                if LocalModel.inCI { throw error }
                try Test.cancel(Comment(rawValue: "not run: \(error) (with CI=true this is a failure)"))
            }
            // Stopped on every way out (a failed #require throws), before the next test starts.
            defer {
                let stopping = clock.now
                let stopped = server.stop()
                print("real model: server stopped in \(seconds(clock.now - stopping)) s")
                #expect(stopped, "the model server (pid \(server.pid)) is still running after scripts/model-server.sh stop")
                // SIGTERM was enough (SIGKILL would leave no such line): it shut down in order.
                let graceful = server.logText.contains("Finished server process")
                #expect(graceful, "the model server did not shut down on SIGTERM (log: \(server.log))")
            }
            let serverStart = clock.now - startedAt
            try await exercise(server, serverStart: serverStart)
        }

        private func exercise(_ server: ModelServer, serverStart: Duration) async throws {
            let context = try PlanningContext(configuration: try RoverFixture.configuration())
            let schema = context.planSchema.text
            let model = try RecordingBackend(OpenAICompatibleBackend(OpenAIBackendSettings(
                name: "local-model", baseURL: server.baseURL, model: ModelServer.modelAlias, dialect: .jsonObjectSchema,
                // A plan is a few dozen tokens; a runaway answer is cut here and refused as invalid JSON.
                maximumTokens: 320)))
            let builtin = BuiltinPlanBackend(context: context)
            let router = PlanRouter(routes: [
                // Generous: warm answers take seconds; a timeout here is a failure of the path, not a figure.
                PlanRoute(model, deadline: .seconds(120)),
                PlanRoute(builtin, deadline: .seconds(2)),
            ], settings: PlanRouterSettings(maximumRetriesAfterRejection: 1))
            let validator = PlanValidator(context: context)
            let verdicts = VerdictLog()
            var answeredSoFar = 0
            var figures = ["server start \(seconds(serverStart)) s"]

            for (index, goal) in ["go to 1,1", "patrol the corners"].enumerated() {
                let world = RoverFixture.world(goalID: UInt64(index + 1), goal: goal, time: 100)
                let planRequest = Planner.PlanRequest(goal: try #require(world.goal), world: world)
                let question = PlannerBackends.PlanRequest(
                    systemPrompt: PlannerRoutes.systemPrompt(context: context, robot: "rover-sim"), goal: goal,
                    data: [PromptData(label: PlannerRoutes.worldLabel, text: String(decoding: try world.jsonData(), as: UTF8.self))],
                    schema: schema)
                // The world stands still while the model thinks: staleness is PlannerTests' subject,
                // and a slow model on a busy machine must not make the fallback's plan stale too.
                let routing = await router.plan(question) { answer in
                    let decoded = PlanValidator.decode(Data(answer.json.utf8))
                    let verdict = validator.validate(answer.json, request: planRequest, world: world)
                    verdicts.append(RecordedVerdict(backend: answer.backend, json: answer.json, decoded: decoded, verdict: verdict))
                    return verdict.rejection.map { $0.issues.map(\.description) + ($0.omitted > 0 ? ["and \($0.omitted) more"] : []) }
                }
                let recorded = verdicts.take()
                let exchanges = model.takeExchanges()
                let modelAttempts = routing.attempts.filter { $0.backend == model.name }

                // The request was sent and answered: every attempt of the model got an answer (no
                // timeout, no transport error), and the server logged HTTP 200 for each.
                try #require(!modelAttempts.isEmpty, "\(goal): the model was not asked: \(routing.attempts)")
                #expect(exchanges.count == modelAttempts.count)
                for (attempt, exchange) in zip(modelAttempts, exchanges) {
                    if case .failed(let error) = attempt.outcome {
                        Issue.record("\(goal): the model gave no answer in round \(attempt.round): \(error)")
                    }
                    #expect(exchange.answer != nil, "\(goal): round \(attempt.round): \(exchange.failure ?? "")")
                }
                answeredSoFar += exchanges.filter { $0.answer != nil }.count
                let logged = await server.answeredRequests(atLeast: answeredSoFar)
                #expect(logged.ok == answeredSoFar, "\(goal): the server logged \(logged.ok) chat completions answered 200, expected \(answeredSoFar); other statuses: \(logged.other)")

                // Each answer was decoded (or its decode failure recorded with a reason) and judged;
                // the router recorded the same verdict.
                let modelVerdicts = recorded.filter { $0.backend == model.name }
                #expect(modelVerdicts.count == exchanges.compactMap(\.answer).count)
                for (attempt, judged) in zip(modelAttempts, modelVerdicts) {
                    #expect(exchanges.indices.contains(attempt.round) && exchanges[attempt.round].answer?.json == judged.json)
                    switch judged.decoded {
                    case .success:
                        break
                    case .failure(let issue):
                        #expect(issue.code == .invalidJSON || issue.code == .notFinite)
                        #expect(!issue.message.isEmpty)
                        #expect(judged.verdict.rejection?.issues == [issue], "a decode failure is the rejection's reason")
                    }
                    switch (judged.verdict, attempt.outcome) {
                    case (.accepted(let plan), .accepted):
                        #expect(!plan.steps.isEmpty && plan.goalID == planRequest.goal.id)
                    case (.rejected(let rejection), .rejected(let reasons)):
                        #expect(!rejection.issues.isEmpty && rejection.issues.allSatisfy { !$0.message.isEmpty })
                        #expect(reasons.prefix(rejection.issues.count) == ArraySlice(rejection.issues.map(\.description)))
                    default:
                        Issue.record("\(goal): the router recorded \(attempt.outcome) for a verdict \(judged.verdict)")
                    }
                }
                // A rejection went back to the model with its reasons (one retry), the answer with it.
                for (round, exchange) in exchanges.enumerated() {
                    #expect(exchange.feedback.count == round)
                    if round > 0, modelAttempts.indices.contains(round - 1), case .rejected(let reasons) = modelAttempts[round - 1].outcome {
                        #expect(exchange.feedback.last?.reasons == reasons)
                        #expect(exchange.feedback.last?.rejectedAnswer == exchanges[round - 1].answer?.json)
                    }
                }
                #expect(modelAttempts.count <= 1 + router.settings.maximumRetriesAfterRejection)

                // The final answer: the model's when it was accepted, else the built-in planner's,
                // with its back end and latency.
                let answer = try #require(routing.answer, "\(goal): no plan: \(routing.attempts)")
                let final = try #require(routing.attempts.last)
                #expect(final.outcome == .accepted && final.backend == answer.backend)
                #expect(answer.latency > .zero && answer.latency <= final.latency)
                if modelAttempts.last?.outcome == .accepted {
                    #expect(answer.backend == model.name)
                    #expect(!routing.attempts.contains { $0.backend == builtin.name })
                } else {
                    #expect(answer.backend == builtin.name, "\(goal): the model's plan was refused, so the built-in planner answers")
                    #expect(modelAttempts.count == 1 + router.settings.maximumRetriesAfterRejection,
                            "the model is asked again with the reasons before the fallback")
                    let accepted = try #require(recorded.last?.verdict.plan, "\(goal): the built-in plan was refused: \(String(describing: recorded.last))")
                    #expect(accepted.steps.map(\.action) == [index == 0 ? "goto" : "patrol"])
                    if index == 0, case .goto(let point, _)? = accepted.steps.first?.command { #expect(point == PlanPoint(x: 1, y: 1)) }
                }

                figures.append("\(goal): " + routing.attempts.map { attempt in
                    "\(attempt.backend) r\(attempt.round) \(seconds(attempt.latency)) s \(Self.word(attempt.outcome))"
                }.joined(separator: ", ") + " → \(answer.backend) (\(seconds(routing.elapsed)) s in all)")
                for (exchange, judged) in zip(exchanges, modelVerdicts) {
                    figures.append("  answer (\(exchange.answer?.finishReason ?? "?")): \(judged.json.prefix(300))"
                                   + (judged.verdict.rejection.map { " → rejected: \($0.issues.prefix(3).map(\.description).joined(separator: "; "))" } ?? " → accepted"))
                }
            }

            // The model's figures as the plan topic will publish them.
            let health = router.health()
            #expect(health[0].name == model.name && health[0].failures == 0 && health[0].breaker == .closed)
            #expect(health[0].answers == answeredSoFar && health[0].latencyP50 != nil)

            // The dialect is a real setting: the same server answers OpenAI's `json_schema` with HTTP 500.
            let openAIDialect = try OpenAICompatibleBackend(OpenAIBackendSettings(
                name: "json-schema", baseURL: server.baseURL, model: ModelServer.modelAlias, dialect: .jsonSchema, maximumTokens: 8))
            let probe = PlannerBackends.PlanRequest(systemPrompt: "", goal: "stop", schema: schema)
            do {
                _ = try await openAIDialect.plan(probe, deadline: .seconds(30))
                Issue.record("llama-cpp-python's server accepted the json_schema dialect: docs/planner-backends.md says it answers 500")
            } catch let PlanBackendError.httpStatus(status, _) {
                #expect(status == 500)
            }
            print("real model figures: " + figures.joined(separator: "\n"))
        }

        private static func word(_ outcome: PlanAttempt.Outcome) -> String {
            switch outcome {
            case .accepted: "accepted"
            case .rejected(let reasons): "rejected (reasons: \(reasons.count))"
            case .failed(let error): "failed (\(error))"
            case .skipped(let why): "skipped (\(why))"
            case .cancelled: "cancelled"
            }
        }
    }
}

private func seconds(_ d: Duration) -> String { String(format: "%.2f", d.inSecondsValue) }

extension Duration {
    fileprivate var inSecondsValue: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) * 1e-18
    }
}

/// One answer and what the validator made of it.
struct RecordedVerdict: Sendable {
    var backend: String
    var json: String
    var decoded: Result<Planner.JSONValue, PlanIssue>
    var verdict: PlanVerdict
}

/// The verdicts of one routing, as the validator gave them (the router's closure runs on the pool).
final class VerdictLog: Sendable {
    private let verdicts = Mutex<[RecordedVerdict]>([])
    func append(_ v: RecordedVerdict) { verdicts.withLock { $0.append(v) } }
    /// The verdicts since the last call.
    func take() -> [RecordedVerdict] {
        verdicts.withLock { all in
            defer { all.removeAll() }
            return all
        }
    }
}

/// Where the local model server is and whether this run has it.
enum LocalModel {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let python = root.appendingPathComponent(".build/model-venv/bin/python3").path
    static let model = root.appendingPathComponent(".build/model-venv/model.gguf").path
    /// What scripts/test.sh keeps of a failed scripts/setup-model.sh (its standard error).
    static let setupErrors = root.appendingPathComponent(".build/setup-model.err").path

    static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Why the server cannot run here; nil when it is set up.
    static var setupProblem: String? {
        let fm = FileManager.default
        // `model.gguf` is a link into the cache: it must resolve.
        guard fm.isExecutableFile(atPath: python), fm.fileExists(atPath: model) else {
            var why = "the local model server is not set up (no .build/model-venv with its model.gguf): run scripts/setup-model.sh"
            if let text = try? String(contentsOfFile: setupErrors, encoding: .utf8),
               let line = text.split(separator: "\n").last(where: { $0.contains("error:") }) {
                why += "; scripts/test.sh ran it and it failed: \(line)"
            }
            return why
        }
        return nil
    }

    static var skipReason: String { setupProblem ?? "" }
}

/// The server started by scripts/model-server.sh on a free loopback port, stopped by its PID.
final class ModelServer: Sendable {
    static let script = LocalModel.root.appendingPathComponent("scripts/model-server.sh").path
    /// The name the server gives the model (scripts/model-server.sh's --model_alias).
    static let modelAlias = "smollm2-135m-instruct"

    let port: Int
    let pid: Int32
    let log: String
    let baseURL: URL

    struct StartError: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs `model-server.sh start` (it returns once `/v1/models` answers) and waits for it by
    /// sleeping the task, not a thread of the pool.
    static func start() async throws -> ModelServer {
        let process = try Subprocess(script, ["start", "--timeout", "180"])
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(200)
        while process.process.isRunning && clock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        guard let status = process.wait(seconds: 5), status == 0 else {
            // The end of the script's error: the server log's last lines (the Python error), then why.
            let lines = process.stderr.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            throw StartError(description: "the model server did not start: " + lines.suffix(4).joined(separator: " | "))
        }
        let fields = Dictionary(process.stdout.split(whereSeparator: \.isWhitespace).compactMap { pair -> (String, String)? in
            let parts = pair.split(separator: "=", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }, uniquingKeysWith: { $1 })
        guard let port = fields["port"].flatMap(Int.init), let pid = fields["pid"].flatMap(Int32.init),
              let url = URL(string: "http://127.0.0.1:\(port)/v1")
        else {
            throw StartError(description: "model-server.sh start printed no `port=N pid=P`: \(process.stdout)")
        }
        return ModelServer(port: port, pid: pid, log: LocalModel.root.appendingPathComponent(".build/model-server-\(port).log").path,
                           baseURL: url)
    }

    private init(port: Int, pid: Int32, log: String, baseURL: URL) {
        self.port = port
        self.pid = pid
        self.log = log
        self.baseURL = baseURL
    }

    /// `model-server.sh stop PID` (SIGTERM, SIGKILL after 10 s); whether the process is gone (or
    /// dead and not yet reaped by init, which is its parent) within 10 s more.
    func stop() -> Bool {
        if let process = try? Subprocess(Self.script, ["stop", String(pid)]) { _ = process.wait(seconds: 30) }
        return waitUntil(seconds: 10) { isGone }
    }

    private var isGone: Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
        // `pid (comm) S …`: the state follows the last ')'.
        guard let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// The chat completions the server's access log shows, answered 200 and otherwise; waits up to
    /// 5 s for `atLeast` 200s (the log is written as the answer goes out).
    func answeredRequests(atLeast: Int) async -> (ok: Int, other: [String]) {
        func count() -> (ok: Int, other: [String]) {
            let lines = logText.split(separator: "\n")
                .filter { $0.contains("\"POST /v1/chat/completions HTTP/1.1\"") }
            let ok = lines.filter { $0.contains("HTTP/1.1\" 200") }
            return (ok.count, lines.filter { !$0.contains("HTTP/1.1\" 200") }.map(String.init))
        }
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(5)
        var result = count()
        while result.ok < atLeast && clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
            result = count()
        }
        return result
    }
}

/// The model's back end, keeping what it was asked (the fed-back rejections) and what it answered
/// or why it did not.
final class RecordingBackend: PlanBackend {
    struct Exchange: Sendable {
        var feedback: [PlanFeedback]
        var answer: PlanAnswer?
        var failure: String?
    }

    let inner: OpenAICompatibleBackend
    private let exchanges = Mutex<[Exchange]>([])
    var name: String { inner.name }

    init(_ inner: OpenAICompatibleBackend) { self.inner = inner }

    func plan(_ request: PlannerBackends.PlanRequest, deadline: Duration) async throws -> PlanAnswer {
        do {
            let answer = try await inner.plan(request, deadline: deadline)
            exchanges.withLock { $0.append(Exchange(feedback: request.feedback, answer: answer)) }
            return answer
        } catch {
            exchanges.withLock { $0.append(Exchange(feedback: request.feedback, failure: "\(error)")) }
            throw error
        }
    }

    /// The exchanges since the last call.
    func takeExchanges() -> [Exchange] {
        exchanges.withLock { all in
            defer { all.removeAll() }
            return all
        }
    }
}

/// The bundled simulator's rover (examples/rover-sim.yaml: its arena, wheels, limits, abilities).
enum RoverFixture {
    static func configuration() throws -> RobotConfiguration {
        let path = LocalModel.root.appendingPathComponent("examples/rover-sim.yaml").path
        let yaml = try String(contentsOfFile: path, encoding: .utf8)
        let report = ConfigurationLoader.load(text: yaml, file: "rover-sim.yaml", catalog: RobotKinds.catalog)
        guard let configuration = report.configuration else { throw Problem(description: "\(report)") }
        return configuration
    }

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// At rest where robotd-sim puts the rover, nothing latched, the goal current.
    static func world(goalID: UInt64, goal: String, time: Double) -> WorldState {
        WorldState(revision: 1, timeS: time, pose: WorldState.Pose(x: -3.5, y: 0, yaw: 0),
                   sensors: [WorldState.Sensor(name: "range", value: 4)], mode: "auto", latched: false,
                   goal: WorldState.Goal(id: goalID, text: goal))
    }

}
