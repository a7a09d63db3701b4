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
    private let apiKey: String?

    public var name: String { settings.name }

    /// Checks the settings and reads the API key now, so that a back end that cannot work says so at
    /// start rather than at the first goal.
    public init(_ settings: OpenAIBackendSettings, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard let scheme = settings.baseURL.scheme?.lowercased(), scheme == "http" || scheme == "https",
              settings.baseURL.host != nil
        else {
            throw PlanBackendError.configuration("\(settings.name): the base URL must be http:// or https:// with a host")
        }
        guard !settings.model.isEmpty else { throw PlanBackendError.configuration("\(settings.name): no model") }
        guard settings.maximumResponseBytes > 0 else {
            throw PlanBackendError.configuration("\(settings.name): the response size cap must be positive")
        }
        self.settings = settings
        self.endpoint = settings.baseURL.appendingPathComponent("chat/completions")
        self.apiKey = try settings.apiKey.resolve(environment: environment)
    }

    public func plan(_ request: PlanRequest, deadline: Duration) async throws -> PlanAnswer {
        let clock = ContinuousClock()
        let started = clock.now
        let body = try requestBody(for: request)
        var urlRequest = URLRequest(url: endpoint)
        urlRequest.httpMethod = "POST"
        urlRequest.httpBody = body
        urlRequest.setValue("application/json", forHTTPHeaderField: "Content-Type")
        urlRequest.setValue("application/json", forHTTPHeaderField: "Accept")
        if let apiKey { urlRequest.setValue("Bearer \(apiKey)", forHTTPHeaderField: "Authorization") }
        let response = try await HTTPExchange.send(urlRequest, deadline: deadline, limit: settings.maximumResponseBytes)
        guard (200..<300).contains(response.status) else {
            throw PlanBackendError.httpStatus(response.status, body: Self.printablePrefix(response.body))
        }
        let completion: ChatCompletionResponse
        do {
            completion = try JSONDecoder().decode(ChatCompletionResponse.self, from: response.body)
        } catch {
            throw PlanBackendError.malformedBody(Self.decodingProblem(error, body: response.body))
        }
        guard let choice = completion.choices?.first else { throw PlanBackendError.noChoices }
        guard let content = choice.message?.content, !content.allSatisfy(\.isWhitespace) else {
            if let refusal = choice.message?.refusal, !refusal.isEmpty {
                throw PlanBackendError.other("the model refused: \(Self.printablePrefix(Data(refusal.utf8)))")
            }
            throw PlanBackendError.emptyContent(finishReason: choice.finishReason)
        }
        return PlanAnswer(json: content, backend: name, latency: clock.now - started,
                          model: completion.model, finishReason: choice.finishReason)
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
            // Only a non-finite number in the schema gets here.
            throw PlanBackendError.configuration("the request cannot be encoded: \(error.localizedDescription)")
        }
    }

    /// The start of a body as one printable line (a server's error page, for the message).
    static func printablePrefix(_ body: Data, count: Int = 200) -> String {
        let text = String(decoding: body.prefix(count * 4), as: UTF8.self)
        // Line breaks become spaces; other control characters (a terminal's escapes) are dropped.
        let line = text.map { $0.isNewline || $0 == "\t" ? " " : $0 }
            .filter { $0.unicodeScalars.allSatisfy { !CharacterSet.controlCharacters.contains($0) } }
        let trimmed = String(line).trimmingCharacters(in: .whitespaces)
        return trimmed.count > count ? String(trimmed.prefix(count)) + "…" : trimmed
    }

    private static func decodingProblem(_ error: any Error, body: Data) -> String {
        let start = printablePrefix(body, count: 80)
        switch error {
        case DecodingError.dataCorrupted: return "not JSON (starts \"\(start)\")"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return "unexpected type at \(path.isEmpty ? "the top" : path) (starts \"\(start)\")"
        default: return "\(error.localizedDescription) (starts \"\(start)\")"
        }
    }
}
