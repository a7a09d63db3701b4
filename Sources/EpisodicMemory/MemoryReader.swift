import Foundation

/// A read-only look at a memory file (`robotd memory`): never creates, migrates or writes it, and
/// works while a robotd is writing (WAL: it sees the episodes committed when it reads).
public final class MemoryReader: Sendable {
    private let store: MemoryStore

    public var path: String { store.path }

    /// Throws `missing` for no file, `notADatabase`, `foreignDatabase` or `newerSchema` for a file
    /// that is not a memory this robotd can read.
    public init(path: String, busyTimeout: TimeInterval = 2) throws(MemoryError) {
        store = try MemoryStore(path: path, mode: .readOnly, busyTimeout: busyTimeout)
    }

    deinit { store.close() }

    /// The last `limit` episodes, newest first.
    public func recentEpisodes(limit: Int) throws(MemoryError) -> [Episode] {
        try store.recentEpisodes(limit: limit)
    }

    /// The last `limit` safety interventions, newest first.
    public func recentInterventions(limit: Int) throws(MemoryError) -> [Intervention] {
        try store.recentInterventions(limit: limit)
    }

    /// The last `limit` rejected answers, newest first.
    public func recentRejections(limit: Int) throws(MemoryError) -> [Rejection] {
        try store.recentRejections(limit: limit)
    }

    /// Episodes and interventions the file holds.
    public func counts() throws(MemoryError) -> (episodes: Int, interventions: Int) {
        try store.counts()
    }

    /// `PRAGMA journal_mode`: `wal` for a file robotd wrote.
    public func journalMode() throws(MemoryError) -> String {
        try store.journalMode()
    }

    /// The summary a planner with `vocabulary` would get from this file (`MemorySummary`), as if it
    /// were the newest run recorded.
    public func summary(vocabulary: MemorySummary.Vocabulary, now: Date = Date(), byteCap: Int = 2048, episodes: Int = 8,
                        rejections: Int = 4, interventions: Int = 4) throws(MemoryError) -> MemorySummary {
        MemorySummary.build(episodes: try store.recentEpisodes(limit: episodes),
                            rejections: try store.recentRejections(limit: rejections),
                            interventions: try store.recentInterventions(limit: interventions), now: now, byteCap: byteCap,
                            vocabulary: vocabulary, currentRun: try store.latestRun())
    }
}
