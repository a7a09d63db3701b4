import Foundation
import Testing
import TestSupport
@testable import PlannerBackends

extension PlannerBackendsTimedTests {
    /// Review finding Medium 6: libcurl, under FoundationNetworking, takes a proxy from the
    /// environment (`http_proxy`, `all_proxy`, …) and would send a loopback back end's requests —
    /// the `Authorization` header in clear text — to it; FoundationNetworking applies nothing of
    /// `connectionProxyDictionary`. The environment is the process's, so each case runs in a child:
    /// this test binary again, running only `ProxyEnvironmentProbe` with the variable set, against a
    /// model server and a fake proxy (a TCP listener that records what reaches it).
    @Suite("API key: a proxy in the environment", .enabled(if: OpenAIPeer.isAvailable, "python3 is not installed"))
    struct ProxyEnvironmentTests {
        /// A listener that records the first lines of every connection as a JSON line and answers 502.
        static let fakeProxy = #"""
        import json, socket, sys, threading, time
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
        print(json.dumps({"listening": s.getsockname()[1]}), flush=True)
        def serve(c):
            c.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = c.recv(4096)
                    if not chunk: break
                    data += chunk
            except OSError:
                pass
            head = data.split(b"\r\n\r\n")[0].decode(errors="replace").split("\r\n")
            print(json.dumps({"connection": head}), flush=True)
            try:
                c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            finally:
                c.close()
        def accept():
            while True:
                c, _ = s.accept()
                threading.Thread(target=serve, args=(c,), daemon=True).start()
        threading.Thread(target=accept, daemon=True).start()
        time.sleep(float(sys.argv[1]))
        """#

        struct Outcome {
            /// The child's lines: `init` (the back end built from the real environment) and `request`
            /// (one built from an environment without the proxy, then asked).
            var child: [String: String]
            var childOutput: String
            /// The first lines of each connection that reached the fake proxy.
            var proxied: [[String]]
            var served: Int
        }

        /// Runs the probe in a child with `variables` added to its environment (`PROXY` in a value
        /// becomes the fake proxy's URL).
        func probe(_ variables: [String: String]) async throws -> Outcome {
            let peer = try await OpenAIPeer.start(["m": ["mode": "ok", "content": goodPlan]])
            let proxy = try Subprocess(OpenAIPeer.python, ["-c", Self.fakeProxy, "60"])
            defer { proxy.signal(SIGKILL) }
            var port: Int?
            for _ in 0..<500 where port == nil {
                port = proxy.jsonLines.lazy.compactMap { $0["listening"] as? Int }.first
                if port == nil { try await Task.sleep(for: .milliseconds(10)) }
            }
            let proxyURL = "http://127.0.0.1:\(try #require(port, "the fake proxy did not start: \(proxy.stderr)"))"
            var environment = ProcessInfo.processInfo.environment.filter { !$0.key.lowercased().hasSuffix("_proxy") }
            for (name, value) in variables { environment[name] = value.replacingOccurrences(of: "PROXY", with: proxyURL) }
            environment[ProxyEnvironmentProbe.variable] = peer.baseURL.absoluteString
            let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
            let child = try Subprocess(executable, ["--testing-library", "swift-testing", "--filter", "ProxyEnvironmentProbe"],
                                       environment: environment)
            // Waits by sleeping the task: the pool's threads are the tests' (and the peers' readers').
            for _ in 0..<1200 where child.process.isRunning { try await Task.sleep(for: .milliseconds(100)) }
            let status = child.wait(seconds: 5)
            #expect(status != nil, "the child did not end: \(child.stdout.suffix(2000))")
            var lines: [String: String] = [:]
            for line in child.stdout.split(separator: "\n") where line.hasPrefix(ProxyEnvironmentProbe.prefix) {
                let parts = line.dropFirst(ProxyEnvironmentProbe.prefix.count).split(separator: "=", maxSplits: 1)
                if parts.count == 2 { lines[String(parts[0])] = String(parts[1]) }
            }
            // What reached the proxy is printed before its answer, which the child waited for.
            try await Task.sleep(for: .milliseconds(200))
            return Outcome(child: lines, childOutput: String(child.stdout.suffix(3000)),
                           proxied: proxy.jsonLines.compactMap { $0["connection"] as? [String] }, served: peer.requests(model: "m").count)
        }

        /// `http_proxy` (and `all_proxy`, `ALL_PROXY`, what libcurl takes for http://): the back end
        /// refuses to start, naming the variable (not its value), and a back end made without it
        /// refuses each request while it is set. Nothing reaches the proxy, nothing the server.
        /// Without the refusal the request went to the proxy, key and all: `POST http://127.0.0.1:…`
        /// with `Authorization: Bearer sk-…` (seen with this test before the fix).
        @Test(arguments: ["http_proxy", "all_proxy", "ALL_PROXY"])
        func when_a_proxy_variable_is_set_expect_no_request_through_it(variable: String) async throws {
            let outcome = try await probe([variable: "PROXY"])
            #expect(outcome.proxied.isEmpty, "the proxy received: \(outcome.proxied)")
            #expect(!outcome.proxied.joined().joined().contains(secretKey))
            #expect(outcome.child["init"]?.contains("not usable: local: the environment variable \(variable) would send its requests") == true,
                    "\(outcome.child) \(outcome.childOutput)")
            #expect(outcome.child["init"]?.contains("127.0.0.1:") == false, "the proxy's value must not be said")
            #expect(outcome.child["request"]?.hasPrefix("configuration:") == true, "\(outcome.child) \(outcome.childOutput)")
            #expect(outcome.served == 0)
        }

        /// Guards: `HTTP_PROXY` (upper case) is ignored by libcurl for http:// (CGI's "httpoxy"), and
        /// `no_proxy` naming the host exempts it: the back end works, straight to the server, and the
        /// proxy sees nothing — the refusal above is not a blanket one.
        @Test(arguments: [["HTTP_PROXY": "PROXY"], ["http_proxy": "PROXY", "no_proxy": "localhost,127.0.0.1"]])
        func when_no_proxy_applies_expect_the_request_straight_to_the_server(variables: [String: String]) async throws {
            let outcome = try await probe(variables)
            #expect(outcome.proxied.isEmpty, "the proxy received: \(outcome.proxied)")
            #expect(outcome.child["init"] == "ok", "\(outcome.child) \(outcome.childOutput)")
            #expect(outcome.child["request"] == "answered", "\(outcome.child) \(outcome.childOutput)")
            #expect(outcome.served == 1)
        }
    }
}

/// Where `ProxyEnvironmentTests` tells its child the server's URL.
private let proxyProbeVariable = "ROBOTD_PROXY_PROBE_URL"

/// The child's side of `ProxyEnvironmentTests`: runs only in a child given the server's URL.
@Suite(.enabled(if: ProcessInfo.processInfo.environment[proxyProbeVariable] != nil, "runs in ProxyEnvironmentTests' child only"))
struct ProxyEnvironmentProbe {
    static let variable = proxyProbeVariable
    static let prefix = "PROXY-PROBE "

    @Test func probe() async throws {
        let base = try #require(ProcessInfo.processInfo.environment[Self.variable].flatMap(URL.init(string:)))
        let settings = OpenAIBackendSettings(name: "local", baseURL: base, model: "m", apiKey: .environment("PLANNER_KEY"))
        func say(_ key: String, _ value: String) {
            print(Self.prefix + key + "=" + value.replacingOccurrences(of: "\n", with: " "))
        }
        do {
            _ = try OpenAICompatibleBackend(settings, environment: ProcessInfo.processInfo.environment.merging(["PLANNER_KEY": secretKey]) { $1 })
            say("init", "ok")
        } catch {
            say("init", "\(error)")
        }
        // Built from an environment without the proxy: the request itself must not go through it.
        let backend = try OpenAICompatibleBackend(settings, environment: ["PLANNER_KEY": secretKey])
        do {
            _ = try await backend.plan(testRequest(), deadline: .seconds(10))
            say("request", "answered")
        } catch let error as PlanBackendError {
            say("request", "\(error.kind): \(error)")
        }
    }
}
