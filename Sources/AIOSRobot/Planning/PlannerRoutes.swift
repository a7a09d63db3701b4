import Foundation
import Planner
import PlannerBackends
import RobotConfig

/// The router over the configuration's back ends (`planner.backends`, in order), then the built-in
/// planner (`planner.builtin`, on by default).
public enum PlannerRoutes {
    /// The world state's label in a request's data: the built-in planner reads the pose from it.
    public static let worldLabel = "world state"
    static let memoryLabel = PlanPrompt.memoryLabel

    /// `excluded`: sockets of this process the back ends never reset (the daemon's MQTT connections).
    static func router(_ settings: PlannerSettings, context: PlanningContext,
                       environment: [String: String] = ProcessInfo.processInfo.environment,
                       excluded: ExcludedSockets? = nil) throws -> PlanRouter {
        var routes: [PlanRoute] = []
        for b in settings.backends {
            guard let url = URL(string: b.baseURL) else { throw KindError("planner.backends \(b.name): base_url \(b.baseURL) is not a URL") }
            let key: APIKeySource = b.apiKeyEnv.map { .environment($0) } ?? b.apiKeyFile.map { .file($0) } ?? .none
            let dialect = ResponseFormatDialect(rawValue: b.dialect) ?? .jsonSchema
            let backend: OpenAICompatibleBackend
            do {
                backend = try OpenAICompatibleBackend(OpenAIBackendSettings(name: b.name, baseURL: url, model: b.model, apiKey: key,
                                                                            dialect: dialect, maximumResponseBytes: b.maxResponseBytes),
                                                      environment: environment, excluded: excluded)
            } catch {
                throw KindError("planner.backends \(b.name): \(error)")
            }
            routes.append(PlanRoute(backend, deadline: .saturating(milliseconds: b.deadlineMs), goalKinds: b.goalKinds.map(Set.init),
                                    breaker: BreakerSettings(failureThreshold: b.breaker.failureThreshold,
                                                             coolDown: .saturating(milliseconds: b.breaker.coolDownMs))))
        }
        if settings.builtin || routes.isEmpty {
            // It cannot hang or fail as a server does: a goal it does not understand must not open a breaker.
            routes.append(PlanRoute(BuiltinPlanBackend(context: context), deadline: .seconds(1),
                                    breaker: BreakerSettings(failureThreshold: 1_000_000, coolDown: .seconds(1))))
        }
        return PlanRouter(routes: routes, settings: PlanRouterSettings(maximumRetriesAfterRejection: settings.rejectionRetries))
    }

    /// The goal's kind for routing (`goal_kinds`): the action of the first step the built-in
    /// planner would plan for it; nil when it does not understand the goal.
    static func goalKind(_ goal: String, context: PlanningContext, world: WorldState) -> String? {
        guard let step = BuiltinPlanner(context: context).plan(goal: goal, world: world).plan?.steps.first else { return nil }
        return context.catalog.ability(named: step.ability)?.action.rawValue
    }

    /// robotd's rules for a model: what a plan is, the abilities (the schema says their arguments,
    /// units and bounds), and that it only chooses among them.
    public static func systemPrompt(context: PlanningContext, robot: String) -> String {
        var lines = [
            "You plan for the robot \(robot). A plan is a JSON object {\"steps\": [...]}: at most \(context.settings.maxSteps) steps, each {\"ability\": NAME, \"arguments\": {...}}, executed in order.",
            "Use only these abilities, with the arguments, units and bounds the JSON Schema gives:",
        ]
        for a in context.catalog.abilities {
            let arguments = a.arguments.map { "\($0.name) (\($0.spec.unit))" }.joined(separator: ", ")
            lines.append("- \(a.name)(\(arguments)): \(a.description)")
        }
        lines.append("Coordinates are metres in the odometry frame; the world state gives the robot's pose. A safety guard checks every command whatever the plan says.")
        return lines.joined(separator: "\n")
    }
}

/// The built-in planner as a back end: offline, deterministic, a plan in microseconds. It reads
/// the pose from the request's world state. It cannot correct a rejected plan: asked again with
/// reasons, it gives up (the router falls back or ends).
public struct BuiltinPlanBackend: PlanBackend {
    let context: PlanningContext
    public init(context: PlanningContext) { self.context = context }
    public var name: String { PlannerBackendSettings.builtinName }

    public func plan(_ request: PlannerBackends.PlanRequest, deadline: Duration) async throws -> PlanAnswer {
        let start = ContinuousClock.now
        if let last = request.feedback.last {
            throw PlanBackendError.other("the built-in planner cannot correct its plan (\(last.reasons.joined(separator: "; ")))")
        }
        let worldText = request.data.first { $0.label == PlannerRoutes.worldLabel }?.text ?? ""
        guard let world = try? JSONDecoder().decode(WorldState.self, from: Data(worldText.utf8)) else {
            throw PlanBackendError.other("no world state in the request")
        }
        switch BuiltinPlanner(context: context).plan(goal: request.goal, world: world) {
        case .plan(let plan):
            return PlanAnswer(json: plan.json.text, backend: name, latency: ContinuousClock.now - start)
        case .cannotPlan(let why):
            throw PlanBackendError.other(why)
        }
    }
}
