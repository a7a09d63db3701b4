import Dispatch
import Foundation
import RobotConfig
import Synchronization

/// The planner's episodic memory, as a running robotd keeps it: goals, plans with their back end,
/// latency and verdict, outcomes and safety interventions appended to an SQLite file (WAL mode) on
/// a serial queue of its own, pruned there, and summarised for the prompt.
///
/// `record(_:)` never waits for the disk: it queues the append (bounded; beyond
/// `maximumPendingWrites` the record is dropped and counted) and returns. Call it from the async
/// lane or any ordinary thread — never from the real-time dispatch thread (it allocates and takes
/// a lock). Every failure — a file that cannot be opened, a lock held elsewhere, a full disk — is a
/// counted event with its words in `status`; the robot goes on without (that part of) its memory.
public final class EpisodicMemory: Sendable {
    /// What the memory keeps and how it behaves (from the configuration's `memory` section).
    public struct Options: Sendable, Equatable {
        public var path: String
        public var robotID: String?
        public var maxEpisodes: Int
        public var maxInterventions: Int
        /// Seconds.
        public var maxAge: TimeInterval
        public var summaryBytes: Int
        public var summaryEpisodes: Int
        /// Rejections and interventions the summary considers (newest first).
        public var summaryRejections = 4
        public var summaryInterventions = 4
        /// Appends queued and not yet written beyond this are dropped (and counted).
        public var maximumPendingWrites = 1024
        /// Prune after this many appends (and once at open).
        public var pruneEvery = 64
        /// How long an append waits for a lock held by another connection before it fails.
        public var busyTimeout: TimeInterval = 0.5

        public init(path: String, robotID: String? = nil, maxEpisodes: Int = 1000, maxInterventions: Int = 1000,
                    maxAge: TimeInterval = 30 * 86_400, summaryBytes: Int = 2048, summaryEpisodes: Int = 8) {
            self.path = path
            self.robotID = robotID
            self.maxEpisodes = maxEpisodes
            self.maxInterventions = maxInterventions
            self.maxAge = maxAge
            self.summaryBytes = summaryBytes
            self.summaryEpisodes = summaryEpisodes
        }

        /// The configuration's `memory` section for robot `robotID`.
        public init(_ settings: MemorySettings, robotID: String) {
            self.init(path: settings.resolvedPath(robotID: robotID), robotID: robotID, maxEpisodes: settings.maxEpisodes,
                      maxInterventions: settings.maxInterventions, maxAge: settings.maxAgeDays * 86_400,
                      summaryBytes: settings.summaryBytes, summaryEpisodes: settings.summaryEpisodes)
        }
    }

    /// Counters and the last problem, for telemetry and logs.
    public struct Status: Sendable, Equatable {
        /// Why the memory is not kept at all (it could not be opened); nil when it is.
        public var unavailable: MemoryError?
        /// The run this process recorded in the file.
        public var run: Int64?
        /// Appends written.
        public var stored = 0
        /// Appends that failed (the error in `lastError`).
        public var failed = 0
        /// Records not written: the queue was full, the memory closed or unavailable, or still
        /// queued when `close(within:)` gave up waiting.
        public var dropped = 0
        /// Plans and outcomes for a goal this run never stored.
        public var orphaned = 0
        /// Appends queued, not yet written.
        public var pending = 0
        public var prunedEpisodes = 0
        public var prunedInterventions = 0
        /// Failures by `MemoryError.kind` (opening, appending, pruning, reading).
        public var errorsByKind: [String: Int] = [:]
        public var lastError: MemoryError?
        /// Time to write one append (the last 128), µs.
        public var appendP50Microseconds: Double?
        public var appendP99Microseconds: Double?
    }

    public let options: Options
    private let store: MemoryStore?
    private let queue: DispatchQueue
    private let state: Mutex<State>
    private let onProblem: (@Sendable (MemoryError) -> Void)?

    fileprivate struct State {
        var status = Status()
        var closed = false
        /// `close(within:)` gave up: appends still queued are dropped instead of written.
        var abandoned = false
        /// An append is being written now (it finishes whatever `close(within:)` decides).
        var writing = false
        var sincePrune = 0
        var latencies: [Double] = []
        var nextLatency = 0
    }

    /// Opens (creating, migrating, pruning) the file. Throws when it cannot: use
    /// `openOrUnavailable` to run on without memory instead.
    public static func open(_ options: Options, onProblem: (@Sendable (MemoryError) -> Void)? = nil,
                            now: Date = Date()) throws(MemoryError) -> EpisodicMemory {
        let store = try MemoryStore(path: options.path, mode: .readWrite(robotID: options.robotID),
                                    busyTimeout: options.busyTimeout, now: now)
        let memory = EpisodicMemory(options: options, store: store, unavailable: nil, onProblem: onProblem)
        memory.pruneNow(now: now)
        return memory
    }

    /// Opens the file, or — when it cannot be opened — a memory that keeps nothing, whose
    /// `status.unavailable` says why (and `onProblem` is told once). Never throws: a broken memory
    /// must not keep the robot from running.
    public static func openOrUnavailable(_ options: Options, onProblem: (@Sendable (MemoryError) -> Void)? = nil,
                                         now: Date = Date()) -> EpisodicMemory {
        do {
            return try open(options, onProblem: onProblem, now: now)
        } catch {
            onProblem?(error)
            return EpisodicMemory(options: options, store: nil, unavailable: error, onProblem: onProblem)
        }
    }

    private init(options: Options, store: MemoryStore?, unavailable: MemoryError?, onProblem: (@Sendable (MemoryError) -> Void)?) {
        self.options = options
        self.store = store
        self.onProblem = onProblem
        queue = DispatchQueue(label: "robotd-memory", qos: .utility)
        var initial = State()
        initial.status.run = store?.run
        if let unavailable {
            initial.status.unavailable = unavailable
            initial.status.lastError = unavailable
            initial.status.errorsByKind[unavailable.kind] = 1
        }
        state = Mutex(initial)
    }

    deinit { store?.close() }

    public var status: Status { state.withLock { $0.status } }

    /// The file's path.
    public var path: String { options.path }

    // MARK: Recording

    public func record(_ goal: GoalRecord) { submit(.goal(goal)) }
    public func record(_ plan: PlanRecord) { submit(.plan(plan)) }
    public func record(_ outcome: OutcomeRecord) { submit(.outcome(outcome)) }
    public func record(_ intervention: InterventionRecord) { submit(.intervention(intervention)) }

    private func submit(_ entry: MemoryEntry) {
        let maximum = options.maximumPendingWrites
        let admitted = state.withLock { s -> Bool in
            guard store != nil, !s.closed, s.status.pending < maximum else {
                s.status.dropped += 1
                return false
            }
            s.status.pending += 1
            return true
        }
        guard admitted, let store else { return }
        queue.async { [self] in
            let given = state.withLock { s -> Bool in
                guard s.abandoned else {
                    s.writing = true
                    return false
                }
                s.status.pending -= 1
                s.status.dropped += 1
                return true
            }
            guard !given else { return }
            let start = ContinuousClock.now
            let result: Result<MemoryStore.AppendResult, MemoryError>
            do throws(MemoryError) { result = .success(try store.append(entry)) } catch { result = .failure(error) }
            let elapsed = ContinuousClock.now - start
            let microseconds = Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12
            let pruneDue = state.withLock { s -> Bool in
                s.writing = false
                s.status.pending -= 1
                switch result {
                case .success(.stored):
                    s.status.stored += 1
                    s.noteLatency(microseconds)
                case .success(.orphan):
                    s.status.orphaned += 1
                case .failure(let error):
                    s.note(error)
                }
                s.sincePrune += 1
                return s.sincePrune >= options.pruneEvery
            }
            if case .failure(let error) = result { onProblem?(error) }
            if pruneDue { prune(store, now: Date()) }
        }
    }

    // MARK: Pruning

    /// Prunes now, on the memory's queue (ordered after the appends queued before it).
    public func pruneNow(now: Date = Date()) {
        guard let store else { return }
        queue.async { [self] in prune(store, now: now) }
    }

    /// On the queue.
    private func prune(_ store: MemoryStore, now: Date) {
        let closed = state.withLock { s -> Bool in
            s.sincePrune = 0
            return s.closed
        }
        guard !closed else { return }
        do throws(MemoryError) {
            let pruned = try store.prune(maxEpisodes: options.maxEpisodes, maxInterventions: options.maxInterventions,
                                         maxAge: options.maxAge, now: now)
            state.withLock {
                $0.status.prunedEpisodes += pruned.episodes
                $0.status.prunedInterventions += pruned.interventions
            }
        } catch {
            state.withLock { $0.note(error) }
            onProblem?(error)
        }
    }

    // MARK: Reading

    /// The summary for the prompt: recent goals, rejections and safety interventions within
    /// `options.summaryBytes` (`MemorySummary`), in the words of `vocabulary`. Ordered after every
    /// record queued before it; an unavailable memory, or one that cannot be read, gives
    /// `MemorySummary.empty`.
    public func summary(vocabulary: MemorySummary.Vocabulary, now: Date = Date()) async -> MemorySummary {
        guard let store else { return .empty }
        return await onQueue { [self] in
            guard !isClosed else { return .empty }
            do throws(MemoryError) {
                return MemorySummary.build(
                    episodes: try store.recentEpisodes(limit: options.summaryEpisodes),
                    rejections: try store.recentRejections(limit: options.summaryRejections),
                    interventions: try store.recentInterventions(limit: options.summaryInterventions),
                    now: now, byteCap: options.summaryBytes, vocabulary: vocabulary, currentRun: store.run)
            } catch {
                state.withLock { $0.note(error) }
                onProblem?(error)
                return .empty
            }
        }
    }

    /// The last `limit` episodes, newest first, after the records queued before the call.
    public func recentEpisodes(limit: Int) async throws(MemoryError) -> [Episode] {
        guard let store else { throw status.unavailable ?? .noPath }
        let result: Result<[Episode], MemoryError> = await onQueue { [self] in
            guard !isClosed else { return .failure(.closed(path: path)) }
            do throws(MemoryError) { return .success(try store.recentEpisodes(limit: limit)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// The last `limit` safety interventions, newest first.
    public func recentInterventions(limit: Int) async throws(MemoryError) -> [Intervention] {
        guard let store else { throw status.unavailable ?? .noPath }
        let result: Result<[Intervention], MemoryError> = await onQueue { [self] in
            guard !isClosed else { return .failure(.closed(path: path)) }
            do throws(MemoryError) { return .success(try store.recentInterventions(limit: limit)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Returns once every record queued before the call is written (or has failed).
    public func flush() async {
        await onQueue {}
    }

    /// Writes what is queued, then closes the file; later records are dropped (counted), later
    /// reads give nothing. Waits for the queue however long it takes — a daemon stopping uses
    /// `close(within:)` —; never call it from `onProblem`.
    public func close() {
        guard let store else { return }
        // The flag first, so nothing new is admitted; what was admitted runs before the close.
        state.withLock { $0.closed = true }
        queue.sync { store.close() }
    }

    /// What `close(within:)` came to.
    public struct CloseReport: Sendable, Equatable {
        /// Everything queued was written (or failed) and the file closed within the time.
        public var closedInTime: Bool
        /// Appends still queued when the time was up: given up, never written (also counted in
        /// `status.dropped`). The one being written then still finishes, and the file closes after it.
        public var unwritten: Int
    }

    /// Closes like `close()`, but waits at most `limit` for what is queued: at a shutdown, a file
    /// that is slow or locked elsewhere (each append waiting up to `busyTimeout`, up to
    /// `maximumPendingWrites` of them: minutes) must not hold up the rest. Returns whether it made
    /// it and how many appends it gave up; the file closes on the memory's queue after the append
    /// being written, if any (SQLite's WAL keeps the file whole whenever the process ends).
    public func close(within limit: Duration) -> CloseReport {
        guard let store else { return CloseReport(closedInTime: true, unwritten: 0) }
        state.withLock { $0.closed = true }
        let done = DispatchSemaphore(value: 0)
        queue.async {
            store.close()
            done.signal()
        }
        let (seconds, attoseconds) = max(limit, .zero).components
        let nanoseconds = seconds > Int64(Int.max / 1_000_000_000) ? Int.max : Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
        if done.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .success { return CloseReport(closedInTime: true, unwritten: 0) }
        let unwritten = state.withLock { s -> Int in
            s.abandoned = true
            return s.status.pending - (s.writing ? 1 : 0)
        }
        return CloseReport(closedInTime: false, unwritten: unwritten)
    }

    private var isClosed: Bool { state.withLock { $0.closed } }

    private func onQueue<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: work()) }
        }
    }
}

extension EpisodicMemory.State {
    mutating func note(_ error: MemoryError) {
        status.failed += 1
        status.errorsByKind[error.kind, default: 0] += 1
        status.lastError = error
    }

    mutating func noteLatency(_ microseconds: Double) {
        let window = 128
        if latencies.count < window {
            latencies.append(microseconds)
        } else {
            latencies[nextLatency] = microseconds
            nextLatency = (nextLatency + 1) % window
        }
        let sorted = latencies.sorted()
        status.appendP50Microseconds = sorted[sorted.count / 2]
        status.appendP99Microseconds = sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
    }
}
