import Foundation

/// The rover's world: a walled rectangle centred on the odom origin with round obstacles.
/// Units are metres, frames follow REP 103/105 (x forward, y left; odom fixed to the arena).
public struct Arena: Sendable, Equatable {
    public struct Obstacle: Sendable, Equatable {
        public var x: Double
        public var y: Double
        public var radius: Double
        public init(x: Double, y: Double, radius: Double) {
            self.x = x
            self.y = y
            self.radius = radius
        }
    }

    /// Walls at x = ±halfWidth, y = ±halfHeight.
    public var halfWidth: Double
    public var halfHeight: Double
    public var obstacles: [Obstacle]

    public init(halfWidth: Double, halfHeight: Double, obstacles: [Obstacle]) {
        self.halfWidth = halfWidth
        self.halfHeight = halfHeight
        self.obstacles = obstacles
    }

    /// A 10 m × 8 m arena with four pillars, the default world of `robotd sim`.
    public static let standard = Arena(halfWidth: 5, halfHeight: 4, obstacles: [
        Obstacle(x: 2.0, y: 0.5, radius: 0.4),
        Obstacle(x: -1.5, y: 2.0, radius: 0.5),
        Obstacle(x: -2.5, y: -1.5, radius: 0.3),
        Obstacle(x: 1.0, y: -2.5, radius: 0.6),
    ])

    /// Whether a disc of `radius` at (x, y) touches a wall or an obstacle.
    public func collides(x: Double, y: Double, radius: Double) -> Bool {
        if abs(x) + radius > halfWidth || abs(y) + radius > halfHeight { return true }
        for o in obstacles where hypot(x - o.x, y - o.y) < o.radius + radius { return true }
        return false
    }

    /// Distance along a ray from (x, y) with heading `yaw` to the first wall or obstacle
    /// (the ray starts inside the arena).
    public func rayCast(x: Double, y: Double, yaw: Double) -> Double {
        let dx = cos(yaw), dy = sin(yaw)
        var nearest = Double.infinity
        // Walls: the ray leaves the box through the nearest face it points at.
        if dx > 1e-12 { nearest = min(nearest, (halfWidth - x) / dx) }
        if dx < -1e-12 { nearest = min(nearest, (-halfWidth - x) / dx) }
        if dy > 1e-12 { nearest = min(nearest, (halfHeight - y) / dy) }
        if dy < -1e-12 { nearest = min(nearest, (-halfHeight - y) / dy) }
        // Circles: solve |p + t·d − c|² = r² for the smallest t ≥ 0.
        for o in obstacles {
            let fx = x - o.x, fy = y - o.y
            let b = fx * dx + fy * dy
            let c = fx * fx + fy * fy - o.radius * o.radius
            let disc = b * b - c
            guard disc >= 0 else { continue }
            let root = disc.squareRoot()
            let t = -b - root >= 0 ? -b - root : -b + root
            if t >= 0 { nearest = min(nearest, t) }
        }
        return max(0, nearest)
    }
}
