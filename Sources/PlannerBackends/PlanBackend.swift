/// What a planner back end is asked: the rules (system prompt), the goal and the context as data,
/// the JSON Schema the answer must follow, and the reasons earlier answers were rejected.
///
/// `goal` and every `data` item may come from a user or a sensor: they reach the model inside
/// delimited, JSON-quoted blocks (`PlanPrompt`), never as instructions.
public struct PlanRequest: Sendable, Equatable {
    /// The planner's rules; trusted text written by robotd.
    public var systemPrompt: String
    /// The goal as a person or a topic gave it (data).
    public var goal: String
    /// The goal's kind (`goto`, `patrol`, …), when the caller classified it; the router routes on it.
    public var goalKind: String?
    /// Further context, each a labelled block of data (world state, recent episodes).
    public var data: [PromptData]
    /// The answer's JSON Schema's name (OpenAI wants `^[a-zA-Z0-9_-]{1,64}$`).
    public var schemaName: String
    /// The answer's JSON Schema, as JSON text.
    public var schema: String
    /// Earlier answers to this request and why they were rejected, oldest first.
    public var feedback: [PlanFeedback]

    public init(systemPrompt: String, goal: String, goalKind: String? = nil, data: [PromptData] = [],
                schemaName: String = "plan", schema: String, feedback: [PlanFeedback] = []) {
        self.systemPrompt = systemPrompt
        self.goal = goal
        self.goalKind = goalKind
        self.data = data
        self.schemaName = schemaName
        self.schema = schema
        self.feedback = feedback
    }
}

/// A labelled block of data for the prompt (e.g. "world state" and its JSON).
public struct PromptData: Sendable, Equatable {
    public var label: String
    public var text: String
    public init(label: String, text: String) {
        self.label = label
        self.text = text
    }
}

/// One rejected answer and the validator's reasons, fed back to the model on the next try.
public struct PlanFeedback: Sendable, Equatable {
    public var rejectedAnswer: String
    public var reasons: [String]
    public init(rejectedAnswer: String, reasons: [String]) {
        self.rejectedAnswer = rejectedAnswer
        self.reasons = reasons
    }
}

/// A back end's answer: the plan as JSON text (not yet validated), who gave it and how long it took.
public struct PlanAnswer: Sendable, Equatable {
    public var json: String
    public var backend: String
    public var latency: Duration
    /// The model the server says answered (chat completions' `model`), when it said.
    public var model: String?
    /// Why generation stopped (`stop`, `length`, …), when the server said.
    public var finishReason: String?

    public init(json: String, backend: String, latency: Duration, model: String? = nil, finishReason: String? = nil) {
        self.json = json
        self.backend = backend
        self.latency = latency
        self.model = model
        self.finishReason = finishReason
    }
}

/// Anything that turns a `PlanRequest` into plan JSON: a chat-completions server, a built-in planner.
public protocol PlanBackend: Sendable {
    /// The name answers and health figures carry.
    var name: String { get }
    /// Answers within `deadline` (total, from the call) or throws; honours task cancellation.
    func plan(_ request: PlanRequest, deadline: Duration) async throws -> PlanAnswer
    /// Requests that ended for their callers whose connections are not torn down yet: the router
    /// asks nothing more of a back end while more than one waits (`PlanRouter`).
    var pendingTeardowns: Int { get }
    /// Waits until the teardowns of the requests that ended before the call have run: true, or
    /// false once `bound` passed first. The router's caller holds its request slot meanwhile, so
    /// that a new request never starts while an old connection still floods (`PlanRouter.teardownsFinished`).
    func teardownsFinished(within bound: Duration) async -> Bool
}

extension PlanBackend {
    /// A back end without connections of its own has none.
    public var pendingTeardowns: Int { 0 }
    public func teardownsFinished(within bound: Duration) async -> Bool { true }
}

/// Why a back end gave no answer. Messages never contain credentials.
public enum PlanBackendError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The total deadline passed (a hanging or trickling server).
    case timeout(after: Duration)
    /// The response grew past the cap (`received` bytes when it was cut).
    case responseTooLarge(limit: Int, received: Int)
    /// An HTTP status outside 2xx and 3xx, with the start of the body (one printable line, the
    /// API key and any bearer token removed; nothing of it for 401 and 403).
    case httpStatus(Int, body: String)
    /// A redirect (3xx), refused: it is never followed, since the request and its key would go
    /// wherever it points.
    case redirectRefused(status: Int)
    /// The body is not a chat completion.
    case malformedBody(String)
    /// A chat completion without choices.
    case noChoices
    /// The first choice has no content (or only whitespace).
    case emptyContent(finishReason: String?)
    /// The connection failed (refused, reset, DNS, TLS).
    case transport(String)
    /// The caller cancelled (a new goal, an e-stop).
    case cancelled
    /// The back end cannot be used as configured (no API key, a bad URL, a schema that is not JSON).
    case configuration(String)
    /// Another back end's own error, in words.
    case other(String)

    /// A short stable name for counting failures by kind.
    public var kind: String {
        switch self {
        case .timeout: "timeout"
        case .responseTooLarge: "too_large"
        case .httpStatus: "http_status"
        case .redirectRefused: "redirect"
        case .malformedBody: "malformed_body"
        case .noChoices: "no_choices"
        case .emptyContent: "empty_content"
        case .transport: "transport"
        case .cancelled: "cancelled"
        case .configuration: "configuration"
        case .other: "other"
        }
    }

    public var description: String {
        switch self {
        case .timeout(let after): "no answer within the deadline (\(after.inMilliseconds) ms)"
        case .responseTooLarge(let limit, let received): "response larger than \(limit) bytes (cut at \(received))"
        case .httpStatus(let status, let body): body.isEmpty ? "HTTP \(status)" : "HTTP \(status): \(body)"
        case .redirectRefused(let status): "redirect refused (HTTP \(status)): the base URL must be the server's own, not one that forwards"
        case .malformedBody(let why): "the body is not a chat completion: \(why)"
        case .noChoices: "the chat completion has no choices"
        case .emptyContent(let reason): "the answer is empty" + (reason.map { " (finish_reason \($0))" } ?? "")
        case .transport(let why): "connection failed: \(why)"
        case .cancelled: "cancelled"
        case .configuration(let why): "not usable: \(why)"
        case .other(let why): why
        }
    }
}

extension Duration {
    /// Whole milliseconds (rounded down), for messages and figures.
    var inMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Seconds as a Double.
    var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}
