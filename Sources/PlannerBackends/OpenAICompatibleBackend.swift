import Dispatch
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Where an API key comes from. Never the configuration itself: a key in a file that is committed,
/// shared or published is a leaked key.
public enum APIKeySource: Sendable, Equatable {
    /// No `Authorization` header (a local server).
    case none
    /// An environment variable's value.
    case environment(String)
    /// A file's content (leading and trailing whitespace removed), e.g. a systemd credential.
    case file(String)

    /// The key, or a `configuration` error naming the source (never the key).
    func resolve(environment: [String: String]) throws -> String? {
        switch self {
        case .none:
            return nil
        case .environment(let name):
            guard let value = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else {
                throw PlanBackendError.configuration("the environment variable \(name) (the API key) is not set")
            }
            return value
        case .file(let path):
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw PlanBackendError.configuration("cannot read the API key file \(path)")
            }
            let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !value.isEmpty else { throw PlanBackendError.configuration("the API key file \(path) is empty") }
            guard !value.contains(where: { $0.isNewline }) else {
                throw PlanBackendError.configuration("the API key file \(path) has more than one line")
            }
            return value
        }
    }
}

/// An OpenAI-compatible chat-completions server as a planner back end.
public struct OpenAIBackendSettings: Sendable, Equatable {
    /// The name answers and health figures carry.
    public var name: String
    /// The API's base, e.g. `http://127.0.0.1:8080/v1`; requests go to `<base>/chat/completions`.
    public var baseURL: URL
    public var model: String
    public var apiKey: APIKeySource
    public var dialect: ResponseFormatDialect
    /// `strict` in the `json_schema` dialect.
    public var strictSchema: Bool
    /// A response (headers excluded) larger than this is cut: a plan is a few KiB.
    public var maximumResponseBytes: Int
    public var temperature: Double?
    public var maximumTokens: Int?

    public init(name: String, baseURL: URL, model: String, apiKey: APIKeySource = .none,
                dialect: ResponseFormatDialect = .jsonSchema, strictSchema: Bool = true,
                maximumResponseBytes: Int = 256 * 1024, temperature: Double? = 0, maximumTokens: Int? = 1024) {
        self.name = name
        self.baseURL = baseURL
        self.model = model
        self.apiKey = apiKey
        self.dialect = dialect
        self.strictSchema = strictSchema
        self.maximumResponseBytes = maximumResponseBytes
        self.temperature = temperature
        self.maximumTokens = maximumTokens
    }
}

public struct OpenAICompatibleBackend: PlanBackend {
    public let settings: OpenAIBackendSettings
    private let endpoint: URL
    private let apiKey: APIKey?
    /// Where this back end's finished requests are torn down, one after the other: a server that
    /// keeps a teardown waiting holds one thread, not one per request (see `HTTPExchange`).
    private let teardown: TeardownQueue
    /// Sockets of this process its requests never reset (the daemon's MQTT connections; see `PeerSocket`).
    private let excluded: ExcludedSockets?

    public var name: String { settings.name }

    public var pendingTeardowns: Int { teardown.pending }

    public func teardownsFinished(within bound: Duration) async -> Bool {
        await teardown.finished(within: bound)
    }

    /// Checks the settings and reads the API key now, so that a back end that cannot work says so at
    /// start rather than at the first goal. `excluded`: sockets of this process a request that ends
    /// early must never take for its own and reset (the daemon's MQTT connections).
    public init(_ settings: OpenAIBackendSettings, environment: [String: String] = ProcessInfo.processInfo.environment,
                excluded: ExcludedSockets? = nil) throws {
        guard let scheme = settings.baseURL.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = settings.baseURL.host, !host.isEmpty
        else {
            throw PlanBackendError.configuration("\(settings.name): the base URL must be http:// or https:// with a host")
        }
        // A URL's user and password would show wherever the URL does (errors, descriptions, logs).
        guard settings.baseURL.user == nil, settings.baseURL.password == nil else {
            throw PlanBackendError.configuration("\(settings.name): the base URL carries a user or password: give the key through api_key_env or api_key_file")
        }
        if let problem = OpenAIBackendSettings.clearTextKeyProblem(baseURL: settings.baseURL, sendsKey: settings.apiKey != .none) {
            throw PlanBackendError.configuration("\(settings.name): \(problem)")
        }
        if let problem = EnvironmentProxy.problem(for: settings.baseURL, environment: environment) {
            throw PlanBackendError.configuration("\(settings.name): \(problem)")
        }
        guard !settings.model.isEmpty else { throw PlanBackendError.configuration("\(settings.name): no model") }
        guard settings.maximumResponseBytes > 0 else {
            throw PlanBackendError.configuration("\(settings.name): the response size cap must be positive")
        }
        self.settings = settings
        self.endpoint = settings.baseURL.appendingPathComponent("chat/completions")
        self.apiKey = try settings.apiKey.resolve(environment: environment).map(APIKey.init)
        self.teardown = TeardownQueue(label: "robotd.planner.http-teardown.\(settings.name)")
        self.excluded = excluded
    }

    public func plan(_ request: PlanRequest, deadline: Duration) async throws -> PlanAnswer {
        let clock = ContinuousClock()
        let started = clock.now
        // libcurl reads the environment at every transfer: checked again now, not only at start.
        if let problem = EnvironmentProxy.problem(for: endpoint, environment: EnvironmentProxy.processEnvironment()) {
            throw PlanBackendError.configuration("\(settings.name): \(problem)")
        }
        let body = try requestBody(for: request)
        var urlRequest = URLRequest(url: endpoint)
        urlRequest.httpMethod = "POST"
        urlRequest.httpBody = body
        urlRequest.setValue("application/json", forHTTPHeaderField: "Content-Type")
        urlRequest.setValue("application/json", forHTTPHeaderField: "Accept")
        if let apiKey { urlRequest.setValue("Bearer \(apiKey.value)", forHTTPHeaderField: "Authorization") }
        let response = try await HTTPExchange.send(urlRequest, deadline: deadline, limit: settings.maximumResponseBytes,
                                                   teardown: teardown, excluded: excluded)
        guard (200..<300).contains(response.status) else {
            // The exchange refuses to follow a redirect (the key would go wherever it points), so a
            // 3xx is the answer itself: the base URL is not the server's.
            if (300..<400).contains(response.status) { throw PlanBackendError.redirectRefused(status: response.status) }
            // A server talking about the credentials may quote them: nothing of its body is kept.
            if response.status == 401 || response.status == 403 { throw PlanBackendError.httpStatus(response.status, body: "") }
            throw PlanBackendError.httpStatus(response.status, body: printable(response.body))
        }
        let completion: ChatCompletionResponse
        do {
            completion = try JSONDecoder().decode(ChatCompletionResponse.self, from: response.body)
        } catch {
            throw PlanBackendError.malformedBody(decodingProblem(error, body: response.body))
        }
        guard let choice = completion.choices?.first else { throw PlanBackendError.noChoices }
        guard let content = choice.message?.content, !content.allSatisfy(\.isWhitespace) else {
            if let refusal = choice.message?.refusal, !refusal.isEmpty {
                throw PlanBackendError.other("the model refused: \(printable(Data(refusal.utf8)))")
            }
            throw PlanBackendError.emptyContent(finishReason: choice.finishReason)
        }
        // The answer is recorded, published, remembered and echoed by the validator's reasons: a
        // server that puts the key (or any bearer token) into it must not have it travel on.
        return PlanAnswer(json: scrubbed(content), backend: name, latency: clock.now - started,
                          model: completion.model.map(scrubbed), finishReason: choice.finishReason.map(scrubbed))
    }

    /// `text` without the key or any `Bearer` token, otherwise unchanged.
    func scrubbed(_ text: String) -> String {
        Redaction.scrubbed(text, secret: apiKey?.value)
    }

    /// The JSON body for `request` in this back end's dialect.
    func requestBody(for request: PlanRequest) throws -> Data {
        let schema = try JSONValue(parsing: request.schema)
        let body = ChatCompletionRequest(
            model: settings.model,
            messages: PlanPrompt.messages(for: request, dialect: settings.dialect),
            temperature: settings.temperature,
            maxTokens: settings.maximumTokens,
            responseFormat: ChatCompletionRequest.responseFormat(settings.dialect, name: request.schemaName, schema: schema,
                                                                 strict: settings.strictSchema))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return try encoder.encode(body)
        } catch {
            // Strings, finite numbers and containers always encode; kept so that a failure is said.
            throw PlanBackendError.configuration("the request cannot be encoded: \(error.localizedDescription)")
        }
    }

    /// The start of a body as one printable line, without the key (a server's error page, for the
    /// message: it is recorded, published and printed).
    func printable(_ body: Data, count: Int = 200) -> String {
        Redaction.printableLine(body, secret: apiKey?.value, count: count)
    }

    private func decodingProblem(_ error: any Error, body: Data) -> String {
        let start = printable(body, count: 80)
        switch error {
        case DecodingError.dataCorrupted: return "not JSON (starts \"\(start)\")"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return "unexpected type at \(path.isEmpty ? "the top" : path) (starts \"\(start)\")"
        default: return "\(error.localizedDescription) (starts \"\(start)\")"
        }
    }
}

/// Descriptions, dumps and mirrors show the settings (where the key comes from), never the key.
extension OpenAICompatibleBackend: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        "OpenAICompatibleBackend(\(settings.name), \(settings.baseURL.absoluteString), model \(settings.model), key \(settings.apiKey))"
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(self, children: ["settings": settings, "endpoint": endpoint, "apiKey": apiKey as Any], displayStyle: .struct)
    }
}

extension OpenAIBackendSettings {
    /// Why `baseURL` must not carry an API key, or nil when it may: over `http://` the key crosses
    /// the network in clear text, so plain HTTP is for a loopback host only (127.0.0.0/8, ::1,
    /// `localhost`). For configuration checks as well as the back end's own start.
    public static func clearTextKeyProblem(baseURL: URL, sendsKey: Bool) -> String? {
        guard sendsKey, baseURL.scheme?.lowercased() == "http", let host = baseURL.host else { return nil }
        if LoopbackHost.contains(host) { return nil }
        return "the API key would cross the network in clear text to \(host): use https://, or http:// to a loopback host (127.0.0.1, ::1, localhost)"
    }
}

/// The resolved API key. It is shown nowhere: its descriptions and mirror say "[redacted]", and it
/// is not Codable.
struct APIKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    let value: String
    init(_ value: String) { self.value = value }
    var description: String { Redaction.marker }
    var debugDescription: String { Redaction.marker }
    var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

/// Hosts that name this machine: where a key may go over plain HTTP.
public enum LoopbackHost {
    /// `localhost`, an IPv4 address in 127.0.0.0/8 (four decimal parts), `::1` (any spelling,
    /// brackets or not) or `::ffff:127.x.y.z`. Other names are not resolved: a name could point anywhere.
    public static func contains(_ host: String) -> Bool {
        var name = host.lowercased()
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        if name.hasSuffix(".") { name.removeLast() }
        if name == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, name, &v4) == 1 {
            // s_addr is in network order: its first byte in memory is the address's first part.
            return withUnsafeBytes(of: &v4) { $0[0] } == 127
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, name, &v6) == 1 {
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            if bytes[0..<15].allSatisfy({ $0 == 0 }), bytes[15] == 1 { return true }
            let mapped = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
            return mapped && bytes[12] == 127
        }
        return false
    }
}
