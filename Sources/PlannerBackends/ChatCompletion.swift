/// How a server is asked for JSON that follows a schema. Servers differ, so each back end says
/// which it speaks.
public enum ResponseFormatDialect: String, Sendable, CaseIterable, Codable {
    /// `{"type":"json_schema","json_schema":{"name":…,"schema":…,"strict":true}}`: OpenAI, vLLM,
    /// Ollama, llama.cpp's own `llama-server`. The default.
    case jsonSchema = "json_schema"
    /// `{"type":"json_object","schema":…}`: llama-cpp-python's server (it answers HTTP 500 to
    /// `json_schema`).
    case jsonObjectSchema = "json_object_schema"
    /// No `response_format`; the schema goes into the system prompt instead (a server that
    /// constrains nothing: validation is the only gate).
    case none
}

/// The chat-completions request body (the fields robotd sends).
struct ChatCompletionRequest: Encodable {
    struct Message: Codable, Equatable {
        var role: String
        var content: String
    }

    /// `response_format`, in one of the dialects.
    struct ResponseFormat: Encodable {
        struct NamedSchema: Encodable {
            var name: String
            var schema: JSONValue
            var strict: Bool
        }
        var type: String
        var jsonSchema: NamedSchema?
        var schema: JSONValue?

        enum CodingKeys: String, CodingKey {
            case type
            case jsonSchema = "json_schema"
            case schema
        }
    }

    var model: String
    var messages: [Message]
    var temperature: Double?
    var maxTokens: Int?
    var responseFormat: ResponseFormat?
    var stream = false

    enum CodingKeys: String, CodingKey {
        case model, messages, temperature, stream
        case maxTokens = "max_tokens"
        case responseFormat = "response_format"
    }

    static func responseFormat(_ dialect: ResponseFormatDialect, name: String, schema: JSONValue, strict: Bool) -> ResponseFormat? {
        switch dialect {
        case .jsonSchema:
            ResponseFormat(type: "json_schema", jsonSchema: .init(name: name, schema: schema, strict: strict), schema: nil)
        case .jsonObjectSchema:
            ResponseFormat(type: "json_object", jsonSchema: nil, schema: schema)
        case .none:
            nil
        }
    }
}

/// The part of a chat-completions response robotd reads.
struct ChatCompletionResponse: Decodable {
    struct Choice: Decodable {
        struct Message: Decodable {
            var content: String?
            /// OpenAI's refusal text, when the model refused.
            var refusal: String?
        }
        var message: Message?
        var finishReason: String?

        enum CodingKeys: String, CodingKey {
            case message
            case finishReason = "finish_reason"
        }
    }

    var model: String?
    var choices: [Choice]?
}
