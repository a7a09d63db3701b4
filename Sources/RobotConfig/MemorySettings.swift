/// `memory`: the planner's episodic memory (docs/planner.md, "Memory") — goals, plans, verdicts,
/// outcomes and safety interventions in an SQLite file, summarised into the planner's prompt. No
/// `memory` section: no memory. Every key has a default.
public struct MemorySettings: Sendable, Equatable, Codable {
    /// The SQLite file; nil: `defaultPath(robotID:)`. A relative path is relative to robotd's working
    /// directory (`/` under systemd): write an absolute one.
    public var path: String?
    /// Episodes (goals with their plans and outcome) kept; older ones are pruned.
    public var maxEpisodes: Int = 1000
    /// Safety interventions kept; older ones are pruned.
    public var maxInterventions: Int = 1000
    /// Episodes and interventions older than this are pruned (days).
    public var maxAgeDays: Double = 30
    /// The prompt's summary never exceeds this many bytes of UTF-8.
    public var summaryBytes: Int = 2048
    /// The most recent goals the summary shows (fewer when `summary_bytes` is reached first).
    public var summaryEpisodes: Int = 8

    public init(path: String? = nil) { self.path = path }

    /// Where the file goes when `path` is not given.
    public static func defaultPath(robotID: String) -> String { "/var/lib/robotd/\(robotID)/memory.sqlite" }

    /// The file this configuration names for a robot.
    public func resolvedPath(robotID: String) -> String { path ?? Self.defaultPath(robotID: robotID) }

    /// The limits of the integer keys (the schema's and the memory's own checks).
    public static let maxEpisodesRange = 1...1_000_000
    public static let maxInterventionsRange = 1...1_000_000
    public static let summaryBytesRange = 256...65_536
    public static let summaryEpisodesRange = 0...100

    enum CodingKeys: String, CodingKey {
        case path
        case maxEpisodes = "max_episodes"
        case maxInterventions = "max_interventions"
        case maxAgeDays = "max_age_days"
        case summaryBytes = "summary_bytes"
        case summaryEpisodes = "summary_episodes"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = MemorySettings()
        path = try c.decodeIfPresent(String.self, forKey: .path)
        maxEpisodes = try c.decodeIfPresent(Int.self, forKey: .maxEpisodes) ?? d.maxEpisodes
        maxInterventions = try c.decodeIfPresent(Int.self, forKey: .maxInterventions) ?? d.maxInterventions
        maxAgeDays = try c.decodeIfPresent(Double.self, forKey: .maxAgeDays) ?? d.maxAgeDays
        summaryBytes = try c.decodeIfPresent(Int.self, forKey: .summaryBytes) ?? d.summaryBytes
        summaryEpisodes = try c.decodeIfPresent(Int.self, forKey: .summaryEpisodes) ?? d.summaryEpisodes
    }
}

extension ConfigurationSchema {
    /// `memory`.
    public static let memory: [FieldSpec] = [
        FieldSpec("path", .string, help: "the SQLite file (default /var/lib/robotd/<robot id>/memory.sqlite)"),
        FieldSpec("max_episodes", .integer(MemorySettings.maxEpisodesRange), help: "goals kept with their plans and outcome (default 1000)"),
        FieldSpec("max_interventions", .integer(MemorySettings.maxInterventionsRange),
                  help: "safety interventions kept (default 1000)"),
        FieldSpec("max_age_days", .positive, help: "episodes and interventions older than this are pruned (default 30)"),
        FieldSpec("summary_bytes", .integer(MemorySettings.summaryBytesRange),
                  help: "the prompt's summary of recent episodes never exceeds this (bytes, default 2048)"),
        FieldSpec("summary_episodes", .integer(MemorySettings.summaryEpisodesRange),
                  help: "the most recent goals the summary shows (default 8)"),
    ]
}
