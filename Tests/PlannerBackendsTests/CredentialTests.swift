import Foundation
import Testing
import TestSupport
@testable import PlannerBackends

/// A key as a hosted API's looks, found nowhere it should not be.
let secretKey = "sk-test-4f8a2c9e1b7d6053"

extension PlannerBackendsTimedTests {
    /// Where the API key goes, and where it must not: redirects, error bodies, descriptions.
    @Suite("API key: redirects, error bodies, descriptions", .enabled(if: OpenAIPeer.isAvailable, "python3 is not installed"))
    struct CredentialTests {
        func keyed(_ peer: OpenAIPeer, _ name: String, model: String) throws -> OpenAICompatibleBackend {
            try peer.backend(name, model: model, apiKey: .environment("PLANNER_KEY"), environment: ["PLANNER_KEY": secretKey])
        }

        /// A server that answers with a redirect to another host: never followed (URLSession would
        /// re-send the request, Authorization header included), a clear failure the router records.
        /// The target is `localhost` on another port: another origin.
        @Test(arguments: [301, 302, 303, 307, 308])
        func when_the_server_redirects_expect_it_refused_and_the_key_never_at_the_target(status: Int) async throws {
            let target = try await OpenAIPeer.start(["m": ["mode": "ok", "content": goodPlan]])
            let peer = try await OpenAIPeer.start([
                "m": ["mode": "redirect", "status": status, "location": "http://localhost:\(target.port)/v1/chat/completions"],
            ])
            let router = PlanRouter(routes: [PlanRoute(try keyed(peer, "hosted", model: "m"), deadline: .seconds(5))])
            let routing = await router.plan(testRequest(), validate: workspaceValidator)
            #expect(routing.outcome == .exhausted)
            #expect(routing.attempts.map(\.outcome) == [.failed(.redirectRefused(status: status))])
            let health = router.health()[0]
            #expect(health.failuresByKind == ["redirect": 1])
            #expect(health.lastError?.contains("redirect refused (HTTP \(status))") == true)
            // A configuration failure (Low 14): no retry mends the base URL, so the breaker opens at
            // the first, under its default threshold of 3, and the health says why.
            guard case .open = health.breaker else { Issue.record("the breaker did not open: \(health)"); return }
            #expect(health.configurationFailures == 1 && health.breakerOpened == 1)
            #expect(health.lastError?.contains("a configuration failure: its breaker opened at once") == true)
            // The peer prints the request it answered; its line may reach the pipe after the answer.
            for _ in 0..<100 where peer.requests(model: "m").isEmpty { try await Task.sleep(for: .milliseconds(50)) }
            #expect(peer.requests(model: "m").first?["authorization"] as? String == "Bearer \(secretKey)")
            // Whatever a follower would have sent (POST or GET) would be recorded by now.
            try await Task.sleep(for: .milliseconds(300))
            #expect(target.requests().isEmpty, "the redirect was followed: \(target.requests())")
            #expect(!target.process.stdout.contains(secretKey))
        }

        /// A 3xx without a Location (nothing for URLSession to follow) is refused all the same.
        @Test func when_the_server_answers_3xx_without_a_location_expect_a_redirect_refused() async throws {
            let peer = try await OpenAIPeer.start(["m": ["mode": "status", "status": 300, "body": "{}"]])
            await #expect(throws: PlanBackendError.redirectRefused(status: 300)) {
                try await keyed(peer, "hosted", model: "m").plan(testRequest(), deadline: .seconds(5))
            }
        }

        /// A 400 whose body quotes the Authorization header and the key: the failure keeps the rest
        /// of the message, never the key or the bearer token — in the error, the router's attempts and
        /// its health (what the planner publishes).
        @Test func when_a_400_body_echoes_the_key_expect_it_removed_from_every_record() async throws {
            let peer = try await OpenAIPeer.start(["m": ["mode": "echo_auth", "status": 400]])
            let router = PlanRouter(routes: [PlanRoute(try keyed(peer, "hosted", model: "m"), deadline: .seconds(5))])
            let routing = await router.plan(testRequest(), validate: workspaceValidator)
            // The peer did receive the key and echo it.
            #expect(peer.requests(model: "m").first?["authorization"] as? String == "Bearer \(secretKey)")
            guard case .failed(.httpStatus(400, let body))? = routing.attempts.first?.outcome else {
                Issue.record("expected HTTP 400, got \(routing.attempts)")
                return
            }
            #expect(body.contains("invalid request; you sent Authorization: Bearer [redacted]"))
            #expect(body.contains("(key [redacted])"))
            #expect(!body.contains(secretKey) && !body.contains("sk-test"))
            let records = "\(routing) \(router.health()) \(router.recentAttempts())"
            #expect(records.contains("[redacted]"))
            #expect(!records.contains(secretKey) && !records.contains("sk-test"))
        }

        /// A 200 whose answer echoes the key and a bearer token (review finding Low 13): the answer's
        /// text is recorded, published and remembered, and the validator's reasons quote it — so the
        /// back end scrubs it before anyone sees it. Here the validator rejects the plan and echoes its
        /// whole text, as `unknown ability …` would; nothing of the key is in the answer, the
        /// rejection, the attempts, the health or the feedback sent back.
        @Test func when_a_200_answer_echoes_the_key_expect_it_scrubbed_everywhere() async throws {
            let content = #"{"steps":[{"ability":"$KEY","x":1,"y":2,"note":"$AUTHORIZATION","other":"Bearer tenant-token-77"}]}"#
            let peer = try await OpenAIPeer.start(["m": ["mode": "ok", "content": content]])
            let backend = try keyed(peer, "hosted", model: "m")
            let answer = try await backend.plan(testRequest(), deadline: .seconds(5))
            #expect(peer.requests(model: "m").first?["authorization"] as? String == "Bearer \(secretKey)")
            #expect(answer.json == #"{"steps":[{"ability":"[redacted]","x":1,"y":2,"note":"Bearer [redacted]","other":"Bearer [redacted]"}]}"#)
            // Still JSON: the marker has no quote and no backslash.
            #expect((try? JSONSerialization.jsonObject(with: Data(answer.json.utf8))) != nil)
            let router = PlanRouter(routes: [PlanRoute(backend, deadline: .seconds(5))],
                                    settings: PlanRouterSettings(maximumRetriesAfterRejection: 1))
            let routing = await router.plan(testRequest()) { answer in ["unknown ability in \(answer.json)"] }
            #expect(routing.outcome == .exhausted && routing.attempts.count == 2)
            let records = "\(answer) \(routing) \(router.health()) \(router.recentAttempts())"
            #expect(records.contains("[redacted]"))
            #expect(!records.contains(secretKey) && !records.contains("sk-test") && !records.contains("tenant-token"), "\(records)")
            // The retry's feedback (the rejected answer, the reasons) went back scrubbed too.
            #expect(await OpenAIPeer.eventually { peer.requests(model: "m").count == 3 })
            let retry = try #require(peer.requests(model: "m").last.map(OpenAIPeer.messages))
            #expect(retry.map(\.role).contains("assistant"))
            #expect(!retry.contains { $0.content.contains(secretKey) || $0.content.contains("tenant-token") })
        }

        /// A 401 (or 403) is about the credentials: nothing of its body is kept.
        @Test(arguments: [401, 403])
        func when_a_401_or_403_body_echoes_the_key_expect_no_body_at_all(status: Int) async throws {
            let peer = try await OpenAIPeer.start(["m": ["mode": "echo_auth", "status": status]])
            let router = PlanRouter(routes: [PlanRoute(try keyed(peer, "hosted", model: "m"), deadline: .seconds(5))])
            let routing = await router.plan(testRequest(), validate: workspaceValidator)
            #expect(routing.attempts.map(\.outcome) == [.failed(.httpStatus(status, body: ""))])
            #expect(router.health()[0].lastError == "HTTP \(status)")
        }

        /// A long body with the key across the 200-character cut: scrubbed before it is clipped, so
        /// not even the key's first characters are left; the line stays bounded and printable.
        @Test func when_the_key_straddles_the_cut_expect_none_of_it_left() async throws {
            // The body: {"error": {"message": "<pad>invalid request; you sent Authorization: Bearer <key> (key <key>)", …
            // 23 + pad + 41 + 7 + key + 6 characters before the second key; it starts 6 characters before the cut.
            let pad = 200 - 6 - (23 + 41 + 7 + secretKey.count + 6)
            let peer = try await OpenAIPeer.start(["m": ["mode": "echo_auth", "status": 422, "pad": pad]])
            do {
                _ = try await keyed(peer, "hosted", model: "m").plan(testRequest(), deadline: .seconds(5))
                Issue.record("expected an error")
            } catch let error as PlanBackendError {
                guard case .httpStatus(422, let body) = error else { Issue.record("expected HTTP 422, got \(error)"); return }
                #expect(body.count <= 201)
                #expect(body.hasSuffix("…"))
                #expect(!body.contains(String(secretKey.prefix(4))), "\(body)")
                #expect(body.unicodeScalars.allSatisfy { !CharacterSet.controlCharacters.contains($0) })
            }
        }
    }
}

/// What needs no server: the scrubbing itself, descriptions, the clear-text rule.
@Suite("API key: scrubbing and configuration")
struct CredentialRulesTests {
    func backend(_ url: String, key: APIKeySource = .environment("K")) throws -> OpenAICompatibleBackend {
        let url = try #require(URL(string: url))
        return try OpenAICompatibleBackend(OpenAIBackendSettings(name: "hosted", baseURL: url, model: "m", apiKey: key),
                                           environment: ["K": secretKey])
    }

    @Test func when_a_body_holds_the_key_or_bearer_tokens_expect_them_redacted() {
        func line(_ text: String, count: Int = 200) -> String {
            Redaction.printableLine(Data(text.utf8), secret: secretKey, count: count)
        }
        #expect(line("bad key \(secretKey)!") == "bad key [redacted]!")
        #expect(line(#"{"auth":"Bearer abc.def-ghi","x":1}"#) == #"{"auth":"Bearer [redacted]","x":1}"#)
        #expect(line("authorization: bearer   other-token\nnext") == "authorization: bearer [redacted] next")
        #expect(line("BEARER=xyz; rest") == "BEARER [redacted]; rest")
        // Not a token: the word alone, or inside another word.
        #expect(line("a bearer bond") == "a bearer [redacted]")
        #expect(line("forbearer x") == "forbearer x")
        #expect(line("no token: Bearer") == "no token: Bearer")
        // JSON-escaped.
        let slashed = "sk/with/slashes"
        #expect(Redaction.printableLine(Data(#"{"k":"sk\/with\/slashes"}"#.utf8), secret: slashed) == #"{"k":"[redacted]"}"#)
        // Control characters and escapes dropped, line breaks as spaces, bounded.
        #expect(line("a\u{1B}[31mb\r\nc\u{0}d") == "a[31mb  cd")
        #expect(line(String(repeating: "x", count: 500), count: 10) == "xxxxxxxxxx…")
        #expect(line("  padded  ") == "padded")
    }

    /// The key in a field, a description, a dump, a mirror, or as Encodable: nowhere.
    @Test func when_a_backend_or_router_is_described_or_dumped_expect_no_key() throws {
        let backend = try backend("https://api.example.com/v1")
        let router = PlanRouter(routes: [PlanRoute(backend, deadline: .seconds(5))])
        var dumped = ""
        dump(backend, to: &dumped)
        dump(router, to: &dumped)
        func mirrored(_ value: Any, depth: Int = 0) -> String {
            guard depth < 8 else { return "" }
            return Mirror(reflecting: value).children.map { "\($0.label ?? "") \($0.value) " + mirrored($0.value, depth: depth + 1) }.joined()
        }
        let shown = [
            String(describing: backend), String(reflecting: backend), "\(backend)", dumped, mirrored(backend), mirrored(router),
            String(describing: router.routes), String(reflecting: router.routes),
        ]
        for text in shown {
            #expect(!text.contains(secretKey) && !text.contains("sk-test"), "\(text)")
        }
        #expect(String(describing: backend).contains("api.example.com"))
        #expect(!((backend as Any) is any Encodable))
    }

    @Test func when_a_key_would_go_over_plain_http_to_another_host_expect_a_configuration_error() throws {
        for url in ["http://api.example.com/v1", "http://10.0.0.5:8080/v1", "http://128.0.0.1/v1", "http://[::2]:8080/v1",
                    "http://localhost.example.com/v1", "http://127.0.0.1.nip.io/v1", "http://0.0.0.0:8080/v1"] {
            #expect(throws: PlanBackendError.self, "\(url)") { try backend(url) }
            do {
                _ = try backend(url)
            } catch let error as PlanBackendError {
                #expect(error.kind == "configuration")
                #expect(error.description.contains("clear text"), "\(error)")
            }
        }
        // Loopback over http, anything over https, and no key over http are fine.
        for url in ["http://127.0.0.1:8080/v1", "http://127.1.2.3/v1", "http://localhost:8080/v1", "http://LOCALHOST./v1",
                    "http://[::1]:8080/v1", "http://[0:0:0:0:0:0:0:1]/v1", "http://[::ffff:127.0.0.1]/v1", "https://api.example.com/v1"] {
            #expect(throws: Never.self, "\(url)") { try backend(url) }
        }
        #expect(throws: Never.self) { try backend("http://api.example.com/v1", key: .none) }
        let url = try #require(URL(string: "http://api.example.com/v1"))
        #expect(OpenAIBackendSettings.clearTextKeyProblem(baseURL: url, sendsKey: true) != nil)
        #expect(OpenAIBackendSettings.clearTextKeyProblem(baseURL: url, sendsKey: false) == nil)
    }

    @Test func when_the_base_url_carries_a_password_expect_a_configuration_error_without_it() throws {
        do {
            _ = try backend("https://user:\(secretKey)@api.example.com/v1", key: .none)
            Issue.record("expected an error")
        } catch let error as PlanBackendError {
            #expect(error.kind == "configuration")
            #expect(!error.description.contains(secretKey))
        }
    }
}
