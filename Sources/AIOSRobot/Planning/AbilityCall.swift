import Foundation
import Planner
import PlannerBackends

/// One ability asked for directly, as a structured request on the goal topic instead of a sentence:
/// `{"call": {"ability": "goto", "arguments": {"x": 2, "y": 3}}, "id": "…"}` on `<prefix>goal/<user>`
/// (what `robotd mcp` sends for a tool call). No text is parsed and no planner is asked: the call
/// is the one step of the plan. Everything else is what a goal in words goes through — the user's
/// authorisation, the rate limit, the latch, redelivery by id, then `PlanValidator` on the plan
/// `{"steps": [CALL]}` against the world state, the executor, the guard.
public enum AbilityCall {
    /// The back end the `plan` topic names for a call's plan.
    public static let backendName = "call"
    /// The most a call's text (its goal text on the `plan` topic) keeps.
    static let textLimit = 300

    /// The payload `robotd mcp` publishes for one tool call.
    public static func payload(ability: String, arguments: [String: Planner.JSONValue], id: String) -> [UInt8] {
        let call = Planner.JSONValue.object(["ability": .string(ability), "arguments": .object(arguments)])
        return Array(Planner.JSONValue.object(["call": call, "id": .string(id)]).data)
    }

    /// The call and its id when the payload is a JSON object with `call`; nil for anything else (a
    /// goal in words, `{"goal": …}`). The call is kept whatever it holds: the validator judges it,
    /// and says why, as it does a model's answer.
    public static func parse(_ payload: [UInt8]) -> (call: Planner.JSONValue, id: String?)? {
        guard payload.count <= 4096, payload.first(where: { !$0.isASCIIWhitespace }) == UInt8(ascii: "{"),
              case .object(let fields)? = try? JSONDecoder().decode(Planner.JSONValue.self, from: Data(payload)),
              let call = fields["call"] else { return nil }
        var id: String?
        switch fields["id"] {
        case .string(let s)?: id = s
        case .number(let n)? where n.isFinite: id = n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
        default: id = nil
        }
        return (call, id.map { String($0.prefix(128)) })
    }

    /// The goal's text for a call (`goto(x 2, y 3)`): what the `plan` topic, the world state's goal
    /// and the log show. Data, like any goal's text.
    public static func text(_ call: Planner.JSONValue) -> String {
        let words: String
        if case .object(let fields) = call, case .string(let ability)? = fields["ability"] {
            var arguments: [String: Planner.JSONValue] = [:]
            if case .object(let given)? = fields["arguments"] { arguments = given }
            words = PlanTopicPayload.words(.init(ability: ability, arguments: arguments))
        } else {
            words = "call " + call.text
        }
        return words.count <= textLimit ? words : String(words.prefix(textLimit - 1)) + "…"
    }

    /// A router whose one back end answers with the call as a one-step plan. A rejection ends it:
    /// the caller, not robotd, decides what to ask instead.
    static func router(for call: Planner.JSONValue) -> PlanRouter {
        PlanRouter(routes: [PlanRoute(AbilityCallBackend(call: call), deadline: .seconds(1),
                                      breaker: BreakerSettings(failureThreshold: 1_000_000, coolDown: .seconds(1)))],
                   settings: PlanRouterSettings(maximumRetriesAfterRejection: 0))
    }
}

/// The call as a back end's answer: `{"steps": [CALL]}`, for the validator like any other answer.
struct AbilityCallBackend: PlanBackend {
    let call: Planner.JSONValue
    var name: String { AbilityCall.backendName }

    func plan(_ request: PlannerBackends.PlanRequest, deadline: Duration) async throws -> PlanAnswer {
        PlanAnswer(json: Planner.JSONValue.object(["steps": .array([call])]).text, backend: name, latency: .zero)
    }
}

extension UInt8 {
    fileprivate var isASCIIWhitespace: Bool { self == 0x20 || self == 0x09 || self == 0x0A || self == 0x0D }
}
