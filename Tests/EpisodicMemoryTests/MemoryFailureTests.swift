import Foundation
import GRDB
import Synchronization
import Testing
import TestSupport
@testable import EpisodicMemory

/// A memory that cannot be kept is a clear error and a counted event; the caller goes on.
@Suite("Episodic memory: broken, foreign, locked and unwritable files")
struct MemoryFailureTests {
    @Test func a_corrupt_file_is_a_clear_error_and_the_memory_runs_on_without_it() async throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        let garbage = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        try garbage.write(to: URL(fileURLWithPath: temp.path))

        let error = try #require(throws: MemoryError.self) { try EpisodicMemory.open(temp.options()) }
        guard case .notADatabase(let path, _) = error else { Issue.record("\(error)"); return }
        #expect(path == temp.path)
        #expect(error.description.contains(temp.path) && error.description.contains("not an SQLite database"))

        let told = Mutex<[MemoryError]>([])
        let memory = EpisodicMemory.openOrUnavailable(temp.options()) { error in told.withLock { $0.append(error) } }
        #expect(memory.status.unavailable?.kind == "not_a_database")
        #expect(told.withLock { $0.map(\.kind) } == ["not_a_database"])
        memory.recordEpisode(1, text: "go to 1,1")
        #expect(memory.status.dropped == 3 && memory.status.stored == 0)
        #expect(await memory.summary(vocabulary: testVocabulary) == .empty)
        await #expect(throws: MemoryError.self) { try await memory.recentEpisodes(limit: 1) }
        memory.close()
        // The file is left as it was, for whoever wants to look at it.
        #expect(try Data(contentsOf: URL(fileURLWithPath: temp.path)) == garbage)

        #expect(throws: MemoryError.self) { try MemoryReader(path: temp.path) }
    }

    @Test func another_applications_database_is_refused_and_left_alone() throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        try DatabaseQueue(path: temp.path).write { db in try db.execute(sql: "CREATE TABLE photos(id INTEGER PRIMARY KEY)") }
        #expect(throws: MemoryError.foreignDatabase(path: temp.path)) { try EpisodicMemory.open(temp.options()) }
        #expect(throws: MemoryError.foreignDatabase(path: temp.path)) { try MemoryReader(path: temp.path) }
        let tables = try DatabaseQueue(path: temp.path).read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master") }
        #expect(tables == ["photos"])
    }

    @Test func a_file_from_a_newer_robotd_is_refused() async throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        try EpisodicMemory.open(temp.options()).close()
        try await DatabaseQueue(path: temp.path).write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations(identifier) VALUES ('v9-from-the-future')")
        }
        #expect(throws: MemoryError.newerSchema(path: temp.path, unknown: ["v9-from-the-future"])) {
            try EpisodicMemory.open(temp.options())
        }
    }

    @Test func a_folder_that_cannot_be_made_is_a_clear_error() throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        // A regular file where a folder should be (root can write anywhere else, so this is the
        // unwritable place every user has).
        let file = temp.folder + "/not-a-folder"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let options = EpisodicMemory.Options(path: file + "/robot/memory.sqlite")
        let error = try #require(throws: MemoryError.self) { try EpisodicMemory.open(options) }
        #expect(error.kind == "cannot_create_folder", "\(error)")
        #expect(error.description.contains(options.path))
        let memory = EpisodicMemory.openOrUnavailable(options)
        #expect(memory.status.unavailable == error && memory.status.errorsByKind == ["cannot_create_folder": 1])
        // /proc refuses new files even to root.
        #expect(throws: MemoryError.self) { try EpisodicMemory.open(EpisodicMemory.Options(path: "/proc/robotd-memory.sqlite")) }
    }

    @Test(.enabled(if: canMakeFilesImmutable, "needs chattr +i (root with CAP_LINUX_IMMUTABLE on ext4)"))
    func a_read_only_file_is_a_clear_error_for_the_writer_and_still_readable() async throws {
        let temp = try TemporaryMemory()
        defer {
            chattr("-i", temp.path)
            temp.cleanup()
        }
        do {
            let memory = try EpisodicMemory.open(temp.options())
            memory.recordEpisode(1, text: "go to 1,1")
            memory.close()
        }
        #expect(chattr("+i", temp.path))
        let error = try #require(throws: MemoryError.self) { try EpisodicMemory.open(temp.options()) }
        #expect(["read_only", "cannot_open"].contains(error.kind), "\(error)")
        #expect(error.description.contains(temp.path))
        let memory = EpisodicMemory.openOrUnavailable(temp.options())
        #expect(memory.status.unavailable != nil)
        memory.recordEpisode(2, text: "go to 2,2")
        #expect(memory.status.dropped == 3)
        // `robotd memory` opens read-only: it still reads an immutable file.
        #expect(try MemoryReader(path: temp.path).recentEpisodes(limit: 5).map(\.text) == ["go to 1,1"])
    }

    @Test func a_lock_held_elsewhere_fails_appends_with_a_count_and_record_never_waits_for_it() async throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        var options = temp.options()
        options.busyTimeout = 0.2
        options.maximumPendingWrites = 8
        let told = Mutex<[String]>([])
        let memory = try EpisodicMemory.open(options) { error in told.withLock { $0.append(error.kind) } }
        defer { memory.close() }
        memory.recordEpisode(1, text: "before the lock")
        await memory.flush()

        // Another connection (an `sqlite3` shell, say) takes the write lock and keeps it.
        var configuration = Configuration()
        configuration.allowsUnsafeTransactions = true
        let other = try DatabaseQueue(path: temp.path, configuration: configuration)
        try await other.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE") }

        // 50 records while the queue is stuck behind the lock: each returns at once; 8 are queued,
        // the rest dropped and counted.
        let start = ContinuousClock.now
        for id in UInt64(10)..<60 { memory.record(GoalRecord(goalID: id, text: "during the lock", source: "cli")) }
        let elapsed = ContinuousClock.now - start
        #expect(elapsed < .milliseconds(200), "50 records took \(elapsed)")
        #expect(memory.status.dropped == 42)
        await memory.flush()
        let status = memory.status
        #expect(status.failed == 8 && status.lastError?.kind == "locked" && status.errorsByKind["locked"] == 8, "\(status)")
        #expect(status.lastError?.description.contains(temp.path) == true)
        #expect(told.withLock { $0 } == Array(repeating: "locked", count: 8))

        // The lock goes: the memory goes on as before.
        try await other.writeWithoutTransaction { db in try db.execute(sql: "COMMIT") }
        memory.recordEpisode(2, text: "after the lock")
        #expect(try await memory.recentEpisodes(limit: 5).map(\.text) == ["after the lock", "before the lock"])
        #expect(memory.status.stored == 6)
    }

    /// Appends made slow for real — another connection holds the write lock, so each one waits
    /// its busy timeout (0.3 s) and fails — and 30 of them queued: a close that waited for them
    /// all would take 9 s (1024 of 0.5 s at most in a daemon: minutes). `close(within:)` returns
    /// after its bound, gives up what is still queued, and counts it.
    @Test func a_close_behind_slow_appends_returns_after_its_bound_and_counts_what_it_gave_up() async throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        var options = temp.options()
        options.busyTimeout = 0.3
        let memory = try EpisodicMemory.open(options)
        memory.recordEpisode(1, text: "before the lock")
        await memory.flush()
        var configuration = Configuration()
        configuration.allowsUnsafeTransactions = true
        let other = try DatabaseQueue(path: temp.path, configuration: configuration)
        try await other.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE") }

        for id in UInt64(10)..<40 { memory.record(GoalRecord(goalID: id, text: "during the lock", source: "cli")) }
        let start = ContinuousClock.now
        let report = memory.close(within: .milliseconds(500))
        let elapsed = ContinuousClock.now - start
        #expect(elapsed < .seconds(2), "close took \(elapsed)")
        #expect(!report.closedInTime && report.unwritten >= 24 && report.unwritten <= 29, "\(report)")
        // The append being written when it gave up ends within its busy timeout; the rest are
        // dropped, not written, and the file closes after them.
        let deadline = ContinuousClock.now + .seconds(10)
        while memory.status.pending > 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let status = memory.status
        #expect(status.pending == 0 && status.dropped == report.unwritten && status.failed == 30 - report.unwritten, "\(status)")
        try await other.writeWithoutTransaction { db in try db.execute(sql: "COMMIT") }
        #expect(try MemoryReader(path: temp.path).recentEpisodes(limit: 50).map(\.text) == ["before the lock"])
    }

    /// Without anything slow, `close(within:)` writes everything queued, as `close()` does.
    @Test func a_close_within_a_bound_writes_everything_queued_when_the_disk_keeps_up() async throws {
        let temp = try TemporaryMemory()
        defer { temp.cleanup() }
        let memory = try EpisodicMemory.open(temp.options())
        for id in UInt64(1)...100 { memory.recordEpisode(id, text: "go to \(id % 5),1") }
        let report = memory.close(within: .seconds(20))
        #expect(report == EpisodicMemory.CloseReport(closedInTime: true, unwritten: 0))
        #expect(memory.status.stored == 300 && memory.status.dropped == 0)
        #expect(try MemoryReader(path: temp.path).counts().episodes == 100)
    }
}
