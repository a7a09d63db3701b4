import RobotConfig
import SafetyGuard

/// What planning needs from a robot's configuration: its abilities with their effective bounds,
/// the planner settings, and the workspace exactly as the guard judges it (the guard's own
/// `Workspace`, so "inside" means one thing). Built once per configuration; a value.
public struct PlanningContext: Sendable {
    public let catalog: AbilityCatalog
    public let settings: PlannerSettings
    /// nil without a `workspace` section.
    public let workspace: Workspace?
    /// How far inside the workspace's edge a plan's points must be (m).
    public let clearance: Double

    public struct SetupError: Error, Sendable, CustomStringConvertible {
        public var problems: [AbilityResolution.Problem]
        public var description: String {
            "the abilities cannot be used: " + problems.map(\.description).joined(separator: "; ")
        }
    }

    /// Throws what `robotd check` would have reported about the abilities (a configuration that
    /// passed `check` never throws).
    public init(configuration: RobotConfiguration) throws(SetupError) {
        let resolution = configuration.resolveAbilities()
        guard resolution.problems.isEmpty else { throw SetupError(problems: resolution.problems) }
        // A schema with no alternative is no schema, and no plan could pass.
        guard !resolution.catalog.abilities.isEmpty else {
            throw SetupError(problems: [.init(keyPath: "abilities", message: "none declared: a plan could call nothing",
                                              allowed: "at least one ability")])
        }
        catalog = resolution.catalog
        settings = configuration.planner
        clearance = configuration.planningClearance
        workspace = configuration.workspace.map { w in
            let center = (w.center?.count ?? 0) >= 2 ? Workspace.Point(x: w.center?[0] ?? 0, y: w.center?[1] ?? 0)
                : Workspace.Point(x: 0, y: 0)
            return Workspace(polygon: w.polygon.map { points in points.compactMap { $0.count >= 2 ? Workspace.Point(x: $0[0], y: $0[1]) : nil } },
                             radius: w.radius, center: center, warnDistance: w.warnMargin, stopDistance: w.stopMargin)
        }
    }

    /// Whether a point is inside the workspace by at least the clearance (true without a
    /// workspace: then nothing bounds points, and `check` refuses abilities that take them).
    public func admits(x: Double, y: Double) -> Bool {
        guard x.isFinite, y.isFinite else { return false }
        guard let workspace else { return true }
        return workspace.signedDistance(x: x, y: y) >= clearance
    }
}
