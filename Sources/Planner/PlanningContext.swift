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

    /// How the straight way from `a` to `b` keeps to the workspace: `leaves` when it crosses or
    /// touches the polygon's edge (a non-convex workspace: both ends inside, the way between them
    /// not), else the least distance to the edge anywhere along it (negative: an end is outside).
    /// Infinite without a workspace.
    public func margin(from a: PlanPoint, to b: PlanPoint) -> (distance: Double, leaves: Bool) {
        guard let workspace else { return (.infinity, false) }
        guard a.x.isFinite, a.y.isFinite, b.x.isFinite, b.y.isFinite else { return (-.infinity, true) }
        // The circle is convex: along a straight way its distance is least at an end.
        var distance = min(workspace.signedDistance(x: a.x, y: a.y), workspace.signedDistance(x: b.x, y: b.y))
        guard let polygon = workspace.polygon, polygon.count >= 3 else { return (distance, false) }
        let p = Workspace.Point(x: a.x, y: a.y), q = Workspace.Point(x: b.x, y: b.y)
        var j = polygon.count - 1
        for i in 0..<polygon.count {
            let e0 = polygon[j], e1 = polygon[i]
            j = i
            if Self.intersect(p, q, e0, e1) { return (min(distance, 0), true) }
            // Apart, two segments are closest at an end of one of them.
            distance = min(distance, Self.distance(from: p, to: e0, e1), Self.distance(from: q, to: e0, e1),
                           Self.distance(from: e0, to: p, q), Self.distance(from: e1, to: p, q))
        }
        return (distance, false)
    }

    /// Whether the way from `a` to `b` stays inside by the clearance; from a start that is itself
    /// closer to the edge (the robot's pose), by no less than the start's own distance: a robot
    /// beside the wall may drive away from it, never along it closer. A start outside the
    /// workspace (a robot driven back in) is not judged by its first way.
    public func admits(from a: PlanPoint, to b: PlanPoint, isPose: Bool = false) -> Bool {
        guard let workspace else { return true }
        var needed = clearance
        if isPose {
            let start = workspace.signedDistance(x: a.x, y: a.y)
            guard start >= 0 else { return admits(x: b.x, y: b.y) }
            needed = min(clearance, start)
        }
        let m = margin(from: a, to: b)
        // The start's own distance, computed along another edge order, may differ in its last bit.
        return !m.leaves && m.distance >= needed - 1e-9
    }

    private static func cross(_ o: Workspace.Point, _ a: Workspace.Point, _ b: Workspace.Point) -> Double {
        (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x)
    }

    /// Segments pq and rs meet (touching counts).
    static func intersect(_ p: Workspace.Point, _ q: Workspace.Point, _ r: Workspace.Point, _ s: Workspace.Point) -> Bool {
        let d1 = cross(r, s, p), d2 = cross(r, s, q), d3 = cross(p, q, r), d4 = cross(p, q, s)
        if ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0)) { return true }
        func on(_ a: Workspace.Point, _ b: Workspace.Point, _ c: Workspace.Point) -> Bool {
            min(a.x, b.x) <= c.x && c.x <= max(a.x, b.x) && min(a.y, b.y) <= c.y && c.y <= max(a.y, b.y)
        }
        return (d1 == 0 && on(r, s, p)) || (d2 == 0 && on(r, s, q)) || (d3 == 0 && on(p, q, r)) || (d4 == 0 && on(p, q, s))
    }

    /// From point `c` to segment ab.
    static func distance(from c: Workspace.Point, to a: Workspace.Point, _ b: Workspace.Point) -> Double {
        let abx = b.x - a.x, aby = b.y - a.y
        let lengthSquared = abx * abx + aby * aby
        let t = lengthSquared > 0 ? max(0, min(1, ((c.x - a.x) * abx + (c.y - a.y) * aby) / lengthSquared)) : 0
        let dx = a.x + t * abx - c.x, dy = a.y + t * aby - c.y
        return (dx * dx + dy * dy).squareRoot()
    }
}
