import Foundation
import GRDB

/// What the writer appends (one per call of `EpisodicMemory.record`).
enum MemoryEntry: Sendable {
    case goal(GoalRecord)
    case plan(PlanRecord)
    case outcome(OutcomeRecord)
    case intervention(InterventionRecord)
}

/// The SQLite file: its schema (versioned migrations), appends, queries and pruning. Synchronous:
/// its owner decides the thread (the writer's queue, the command line's main thread). One
/// connection (GRDB's `DatabaseQueue`, itself serialised), in WAL mode, so a reader in another
/// process (`robotd memory`) never blocks the writer and sees only committed episodes.
final class MemoryStore: Sendable {
    /// `PRAGMA application_id` of robotd's memory ("robd"): tells it from any other SQLite file.
    static let applicationID: Int32 = 0x726F_6264

    enum Mode: Sendable {
        /// The writer: creates the file and its folder, migrates, starts a run.
        case readWrite(robotID: String?)
        /// `robotd memory`: never creates, migrates or writes.
        case readOnly
    }

    let path: String
    let database: DatabaseQueue
    /// The run this writer recorded at open; nil for a read-only store.
    let run: Int64?
    /// `plan.codes` as the queries read it: the column, or `'[]'` in a file an older robotd wrote
    /// that a reader (which never migrates) opens.
    private let codesColumn: String

    init(path: String, mode: Mode, busyTimeout: TimeInterval, now: Date = Date()) throws(MemoryError) {
        guard !path.isEmpty else { throw .noPath }
        self.path = path
        var configuration = Configuration()
        configuration.label = "robotd-memory"
        configuration.busyMode = .timeout(busyTimeout)
        configuration.qos = .utility
        switch mode {
        case .readOnly:
            guard FileManager.default.fileExists(atPath: path) else { throw .missing(path: path) }
            configuration.readonly = true
        case .readWrite:
            let folder = (path as NSString).deletingLastPathComponent
            if !folder.isEmpty && !FileManager.default.fileExists(atPath: folder) {
                do {
                    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                } catch {
                    throw .cannotCreateFolder(path: path, reason: Self.words(error))
                }
            }
            configuration.journalMode = .wal
            // In WAL mode NORMAL loses at most the last transactions on a power cut, never the file;
            // a log of episodes does not need an fsync per append.
            configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        }
        let database: DatabaseQueue
        do {
            database = try DatabaseQueue(path: path, configuration: configuration)
        } catch {
            throw MemoryError.from(error, path: path)
        }
        self.database = database
        do {
            switch mode {
            case .readOnly:
                let hasCodes = try database.read { db in
                    try Self.checkIdentity(db, path: path, requireOurs: true)
                    return try db.columns(in: "plan").contains { $0.name == "codes" }
                }
                codesColumn = hasCodes ? "plan.codes" : "'[]'"
                run = nil
            case .readWrite(let robotID):
                try database.writeWithoutTransaction { db in try Self.checkIdentity(db, path: path, requireOurs: false) }
                try Self.migrator.migrate(database)
                codesColumn = "plan.codes"
                run = try database.write { db in
                    try db.execute(sql: "INSERT INTO run(started_at, robot_id) VALUES (?, ?)",
                                   arguments: [now.timeIntervalSince1970, robotID])
                    return db.lastInsertedRowID
                }
            }
        } catch {
            try? database.close()
            throw MemoryError.from(error, path: path)
        }
    }

    func close() { try? database.close() }

    // MARK: Schema

    /// Versioned migrations: a new column or table is a new migration appended here, never an edit
    /// of an old one (files written by earlier robotd versions migrate forward).
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-episodes") { db in
            try db.execute(sql: "PRAGMA application_id = \(applicationID)")
            try db.execute(sql: """
                CREATE TABLE run (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    started_at REAL NOT NULL,
                    robot_id TEXT);
                CREATE TABLE episode (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    run INTEGER NOT NULL,
                    goal_id INTEGER NOT NULL,
                    time REAL NOT NULL,
                    text TEXT NOT NULL,
                    user TEXT,
                    source TEXT NOT NULL,
                    UNIQUE (run, goal_id));
                CREATE INDEX episode_time ON episode(time);
                CREATE TABLE plan (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    episode INTEGER NOT NULL REFERENCES episode(id) ON DELETE CASCADE,
                    time REAL NOT NULL,
                    backend TEXT NOT NULL,
                    latency_ms REAL NOT NULL,
                    verdict TEXT NOT NULL CHECK (verdict IN ('accepted', 'rejected')),
                    reasons TEXT NOT NULL,
                    steps TEXT);
                CREATE INDEX plan_episode ON plan(episode);
                CREATE INDEX plan_verdict ON plan(verdict, id);
                CREATE TABLE outcome (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    episode INTEGER NOT NULL REFERENCES episode(id) ON DELETE CASCADE,
                    time REAL NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('completed', 'failed', 'cancelled')),
                    cause TEXT);
                CREATE INDEX outcome_episode ON outcome(episode);
                CREATE TABLE intervention (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    run INTEGER NOT NULL,
                    goal_id INTEGER,
                    time REAL NOT NULL,
                    kind TEXT NOT NULL,
                    detail TEXT NOT NULL);
                CREATE INDEX intervention_time ON intervention(time);
                """)
        }
        // The validator's issue codes of an answer: the prompt's summary shows these, never the
        // reasons' words (a model's text).
        migrator.registerMigration("v2-plan-codes") { db in
            try db.execute(sql: "ALTER TABLE plan ADD COLUMN codes TEXT NOT NULL DEFAULT '[]'")
        }
        return migrator
    }

    /// Refuses another application's database and one written by a newer robotd. An empty file
    /// is a new memory for the writer, nothing for a reader.
    private static func checkIdentity(_ db: Database, path: String, requireOurs: Bool) throws {
        let id = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
        if id != applicationID {
            let tables = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master WHERE type = 'table'") ?? 0
            if requireOurs || tables > 0 { throw MemoryError.foreignDatabase(path: path) }
            return
        }
        let known = Set(migrator.migrations)
        let unknown = try migrator.appliedIdentifiers(db).subtracting(known)
        if !unknown.isEmpty { throw MemoryError.newerSchema(path: path, unknown: unknown.sorted()) }
    }

    // MARK: Appending

    enum AppendResult: Equatable {
        case stored
        /// A plan or outcome for a goal this run never recorded (its goal failed to store, or the
        /// caller's number is wrong): dropped, counted.
        case orphan(goalID: UInt64)
    }

    func append(_ entry: MemoryEntry) throws(MemoryError) -> AppendResult {
        guard let run else { return .orphan(goalID: 0) }
        do {
            return try database.writeWithoutTransaction { db -> AppendResult in
                var result = AppendResult.stored
                // IMMEDIATE: take the write lock up front, so a lock held elsewhere waits the busy
                // timeout instead of failing at the first write of a deferred transaction.
                try db.inTransaction(.immediate) {
                    result = try Self.insert(entry, run: run, db)
                    return .commit
                }
                return result
            }
        } catch {
            throw MemoryError.from(error, path: path)
        }
    }

    private static func insert(_ entry: MemoryEntry, run: Int64, _ db: Database) throws -> AppendResult {
        func episode(_ goalID: UInt64) throws -> Int64? {
            try Int64.fetchOne(db, sql: "SELECT id FROM episode WHERE run = ? AND goal_id = ?",
                               arguments: [run, Int64(bitPattern: goalID)])
        }
        switch entry {
        case .goal(let goal):
            try db.execute(sql: "INSERT INTO episode(run, goal_id, time, text, user, source) VALUES (?, ?, ?, ?, ?, ?)", arguments: [
                run, Int64(bitPattern: goal.goalID), goal.time.timeIntervalSince1970,
                TextClipping.storable(goal.text, maxBytes: MemoryLimits.goalTextBytes),
                goal.user.map { TextClipping.storable($0, maxBytes: MemoryLimits.userBytes) },
                TextClipping.storable(goal.source, maxBytes: MemoryLimits.sourceBytes),
            ])
        case .plan(let plan):
            guard let id = try episode(plan.goalID) else { return .orphan(goalID: plan.goalID) }
            let reasons = plan.reasons.prefix(MemoryLimits.reasons).map { TextClipping.storable($0, maxBytes: MemoryLimits.reasonBytes) }
            let codes = plan.codes.prefix(MemoryLimits.reasons).map { TextClipping.storable($0, maxBytes: MemoryLimits.codeBytes) }
            try db.execute(sql: """
                INSERT INTO plan(episode, time, backend, latency_ms, verdict, reasons, codes, steps) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [
                    id, plan.time.timeIntervalSince1970, TextClipping.storable(plan.backend, maxBytes: MemoryLimits.backendBytes),
                    milliseconds(plan.latency), plan.verdict.rawValue, encodeStrings(Array(reasons)), encodeStrings(Array(codes)),
                    plan.steps.map { TextClipping.storable($0, maxBytes: MemoryLimits.stepsBytes) },
                ])
        case .outcome(let outcome):
            guard let id = try episode(outcome.goalID) else { return .orphan(goalID: outcome.goalID) }
            try db.execute(sql: "INSERT INTO outcome(episode, time, status, cause) VALUES (?, ?, ?, ?)", arguments: [
                id, outcome.time.timeIntervalSince1970, outcome.status.rawValue,
                outcome.cause.map { TextClipping.storable($0, maxBytes: MemoryLimits.causeBytes) },
            ])
        case .intervention(let intervention):
            try db.execute(sql: "INSERT INTO intervention(run, goal_id, time, kind, detail) VALUES (?, ?, ?, ?, ?)", arguments: [
                run, intervention.goalID.map { Int64(bitPattern: $0) }, intervention.time.timeIntervalSince1970,
                TextClipping.storable(intervention.kind, maxBytes: MemoryLimits.kindBytes),
                TextClipping.storable(intervention.detail, maxBytes: MemoryLimits.detailBytes),
            ])
        }
        return .stored
    }

    // MARK: Pruning

    /// Deletes episodes (with their plans and outcomes) and interventions beyond the counts or
    /// older than `maxAge`, and runs older than `maxAge` except this one. Returns what went.
    func prune(maxEpisodes: Int, maxInterventions: Int, maxAge: TimeInterval, now: Date) throws(MemoryError)
        -> (episodes: Int, interventions: Int) {
        let cutoff = now.timeIntervalSince1970 - maxAge
        do {
            return try database.writeWithoutTransaction { db in
                var episodes = 0, interventions = 0
                try db.inTransaction(.immediate) {
                    try db.execute(sql: """
                        DELETE FROM episode WHERE time < ? OR id <= coalesce(
                            (SELECT id FROM episode ORDER BY id DESC LIMIT 1 OFFSET ?), -1)
                        """, arguments: [cutoff, maxEpisodes])
                    episodes = db.changesCount
                    try db.execute(sql: """
                        DELETE FROM intervention WHERE time < ? OR id <= coalesce(
                            (SELECT id FROM intervention ORDER BY id DESC LIMIT 1 OFFSET ?), -1)
                        """, arguments: [cutoff, maxInterventions])
                    interventions = db.changesCount
                    try db.execute(sql: "DELETE FROM run WHERE started_at < ? AND id IS NOT ?", arguments: [cutoff, run])
                    return .commit
                }
                return (episodes, interventions)
            }
        } catch {
            throw MemoryError.from(error, path: path)
        }
    }

    // MARK: Reading

    /// The last `limit` episodes, newest first, each with its plans and last outcome.
    func recentEpisodes(limit: Int) throws(MemoryError) -> [Episode] {
        do {
            return try database.read { db in
                var episodes = try Row.fetchAll(db, sql: """
                    SELECT id, run, goal_id, time, text, user, source FROM episode ORDER BY id DESC LIMIT ?
                    """, arguments: [max(0, limit)]).map { row in
                    Episode(id: row["id"], run: row["run"], goalID: UInt64(bitPattern: row["goal_id"] as Int64),
                            text: row["text"], user: row["user"], source: row["source"],
                            time: Date(timeIntervalSince1970: row["time"]))
                }
                guard let oldest = episodes.last?.id, let newest = episodes.first?.id else { return [] }
                var index: [Int64: Int] = [:]
                for (i, e) in episodes.enumerated() { index[e.id] = i }
                for row in try Row.fetchAll(db, sql: """
                    SELECT episode, time, backend, latency_ms, verdict, reasons, \(codesColumn) AS codes, steps FROM plan
                    WHERE episode BETWEEN ? AND ? ORDER BY id
                    """, arguments: [oldest, newest]) {
                    guard let i = index[row["episode"]] else { continue }
                    episodes[i].plans.append(StoredPlan(
                        backend: row["backend"], latencyMs: row["latency_ms"],
                        verdict: PlanRecord.Verdict(rawValue: row["verdict"]) ?? .rejected,
                        reasons: decodeStrings(row["reasons"]), codes: decodeStrings(row["codes"]), steps: row["steps"],
                        time: Date(timeIntervalSince1970: row["time"])))
                }
                for row in try Row.fetchAll(db, sql: """
                    SELECT episode, time, status, cause FROM outcome WHERE episode BETWEEN ? AND ? ORDER BY id
                    """, arguments: [oldest, newest]) {
                    guard let i = index[row["episode"]], let status = OutcomeRecord.Status(rawValue: row["status"]) else { continue }
                    episodes[i].outcome = StoredOutcome(status: status, cause: row["cause"], time: Date(timeIntervalSince1970: row["time"]))
                }
                return episodes
            }
        } catch {
            throw MemoryError.from(error, path: path)
        }
    }

    /// The last `limit` rejected answers, newest first, with their goal's text.
    func recentRejections(limit: Int) throws(MemoryError) -> [Rejection] {
        do {
            return try database.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT plan.time, plan.backend, plan.reasons, \(codesColumn) AS codes, episode.text FROM plan
                    JOIN episode ON episode.id = plan.episode
                    WHERE plan.verdict = 'rejected' ORDER BY plan.id DESC LIMIT ?
                    """, arguments: [max(0, limit)]).map { row in
                    Rejection(goal: row["text"], backend: row["backend"], reasons: decodeStrings(row["reasons"]),
                              codes: decodeStrings(row["codes"]), time: Date(timeIntervalSince1970: row["time"]))
                }
            }
        } catch {
            throw MemoryError.from(error, path: path)
        }
    }

    /// The last `limit` safety interventions, newest first.
    func recentInterventions(limit: Int) throws(MemoryError) -> [Intervention] {
        do {
            return try database.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT id, run, goal_id, time, kind, detail FROM intervention ORDER BY id DESC LIMIT ?
                    """, arguments: [max(0, limit)]).map { row in
                    Intervention(id: row["id"], run: row["run"], kind: row["kind"], detail: row["detail"],
                                 goalID: (row["goal_id"] as Int64?).map { UInt64(bitPattern: $0) },
                                 time: Date(timeIntervalSince1970: row["time"]))
                }
            }
        } catch {
            throw MemoryError.from(error, path: path)
        }
    }

    /// The newest run recorded in the file (the running robotd's, while one writes it); nil: none.
    func latestRun() throws(MemoryError) -> Int64? {
        do {
            return try database.read { db in try Int64.fetchOne(db, sql: "SELECT max(id) FROM run") }
        } catch {
            throw MemoryError.from(error, path: path)
        }
    }

    /// How many episodes and interventions the file holds.
    func counts() throws(MemoryError) -> (episodes: Int, interventions: Int) {
        do {
            return try database.read { db in
                (try Int.fetchOne(db, sql: "SELECT count(*) FROM episode") ?? 0,
                 try Int.fetchOne(db, sql: "SELECT count(*) FROM intervention") ?? 0)
            }
        } catch {
            throw MemoryError.from(error, path: path)
        }
    }

    /// `PRAGMA journal_mode` (`wal` for a file robotd wrote).
    func journalMode() throws(MemoryError) -> String {
        do {
            return try database.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
        } catch {
            throw MemoryError.from(error, path: path)
        }
    }

    // MARK: Helpers

    private static func milliseconds(_ duration: Duration) -> Double {
        let c = duration.components
        return Double(c.seconds) * 1000 + Double(c.attoseconds) / 1e15
    }

    private static func words(_ error: any Error) -> String {
        (error as NSError).localizedDescription
    }
}

func encodeStrings(_ strings: [String]) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.withoutEscapingSlashes]
    guard let data = try? encoder.encode(strings) else { return "[]" }
    return String(decoding: data, as: UTF8.self)
}

func decodeStrings(_ text: String) -> [String] {
    (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
}
