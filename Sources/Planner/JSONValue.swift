import PlannerBackends

/// The planner's JSON tree is the back ends' (one type for the plan, the schema and the request
/// body that carries it); this name keeps `Planner.JSONValue` working for `import Planner` alone.
public typealias JSONValue = PlannerBackends.JSONValue
