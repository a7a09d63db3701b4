import CRealtime
import Glibc
import Logging
import Platform
import RTScheduler
import SafetyGuard
import Synchronization

/// Owns the actuator back ends of one guard: routes each approved command to the back end that
/// drives its channel, enforces the lifecycle, checks the guard's seal where the bytes leave, and
/// applies safe states on faults and on the way out.
///
/// Two modes. `.threaded` (the daemon): one writer thread per back end; `write` only drops the
/// command into the channel's latest-value mailbox and rings the writer — no lock, no allocation,
/// no system call but a futex wake, so the dispatch thread never blocks on a device.
/// A back end named in `WriterOptions.directWrites` (a `DirectWriting` one: serial frames) is a
/// *direct lane*: `write` sends the frame itself when that costs no wait — the device lock free
/// (tried, never waited for), nothing older of the channel waiting for the writer, the seal's
/// admission, one non-blocking write(2) that takes the whole frame — and otherwise hands the
/// command to the writer exactly as above (a partly written frame: the writer finishes it).
/// `.inline` (lockstep tests on a virtual clock): no threads; the same checks and the device write
/// run inside `write`, so runs stay deterministic.
public final class ActuatorSet: Sendable {
    /// What happened to one write.
    public enum WriteOutcome: Sendable, Equatable {
        /// Inline, or a direct lane's direct write: on the device.
        case written
        /// Threaded: in the channel's mailbox; the writer checks and sends it (or a newer one).
        /// A direct lane's frame that went out only partly is `queued` too: the writer finishes it.
        case queued
        /// Not active (or finalized): refused and counted.
        case refused
        case noBackend
        /// Inline: the back end failed: its safe state was attempted and it went inactive.
        case failed(ActuatorError)
        /// Inline: the seal refused the approval; the channel's safe value went out instead.
        case sealRefused(GuardSeal.Refusal)
    }

    public enum Mode: Sendable, Equatable {
        case inline
        case threaded(WriterOptions)
    }

    /// How the writer threads run.
    public struct WriterOptions: Sendable, Equatable {
        /// SCHED_FIFO priority, just below the dispatch thread's; nil: SCHED_OTHER. When not
        /// permitted, the writers run SCHED_OTHER and one warning says so.
        public var fifoPriority: Int?
        /// The writer wakes at least this often even when not rung.
        public var idleWake: Duration
        /// The back ends (by name; each must be `DirectWriting`) whose commands the dispatch
        /// thread writes itself when it can do so without waiting (the type's comment).
        public var directWrites: Set<String>
        public init(fifoPriority: Int? = nil, idleWake: Duration = .milliseconds(100), directWrites: Set<String> = []) {
            self.fifoPriority = fifoPriority
            self.idleWake = idleWake
            self.directWrites = directWrites
        }
    }

    /// A back end failed or disconnected. The runtime hands it to the guard
    /// (`actuatorFailure` / `connectionLost`), which stops the rest safely. Threaded mode: reported
    /// on the back end's writer thread.
    public struct Fault: Sendable, Equatable {
        public var backend: String
        public var error: ActuatorError
        public var safeStateApplied: Bool
    }

    /// An approval the seal refused where the bytes leave (fixed size: kept in a preallocated ring).
    public struct SealRefusalRecord: BitwiseCopyable, Sendable, Equatable {
        public var channel: ChannelID
        public var refusal: GuardSeal.Refusal
        public var approvedAt: Instant
        public var at: Instant
    }

    public struct MailboxCounts: Sendable, Equatable {
        public var published: UInt64 = 0
        /// Replaced by a newer command of the same channel before the writer took them.
        public var superseded: UInt64 = 0
        public var taken: UInt64 = 0
    }

    /// One back end, its lifecycle (an atomic word) and, threaded, its mailboxes and writer.
    final class Lane: Sendable {
        let backend: any ActuatorBackend
        let name: String
        let channels: [ChannelID]
        let beat: (any HeartbeatSending)?
        let emergency: (any EmergencyStopping)?
        let mailboxes: [ChannelMailbox]
        let lifecycle = Atomic<UInt8>(ActuatorLifecycle().code)
        /// The back end must reach its safe state before anything else goes out (reactivation).
        let safeStatePending = Atomic<Bool>(false)
        /// Drop whatever sits in the mailboxes (an emergency stop: nothing from before resumes).
        let flushPending = Atomic<Bool>(false)
        let heartbeatPending = Atomic<Bool>(false)
        let stopping = Atomic<Bool>(false)
        /// Tests only (`withWritersPaused`): the writer wakes but does nothing.
        let paused = Atomic<Bool>(false)
        let bell = WriterBell()
        /// A direct lane's back end (nil: every command goes through the writer).
        let direct: (any DirectWriting)?
        /// Direct lanes: channels (bit per slot) whose safe value an overtaken direct write could
        /// not follow at once; the writer sends them before anything else.
        let pendingSafeValues = Atomic<UInt64>(0)
        /// Serialises device I/O between the writer and start/stop/inline callers; holds the frame
        /// a direct write left partly written. The dispatch thread takes it in inline mode, and
        /// on a direct lane only tries it; the emergency path never waits for it.
        let io = Mutex<PartialFrame?>(nil)
        let thread = Mutex<RealtimeThread?>(nil)

        init(_ backend: any ActuatorBackend, direct: Bool) {
            self.backend = backend
            name = backend.name
            channels = backend.channels
            beat = backend as? any HeartbeatSending
            emergency = backend as? any EmergencyStopping
            self.direct = direct ? backend as? any DirectWriting : nil
            mailboxes = channels.map { _ in ChannelMailbox() }
        }

        /// Caller holds `io`: a partly written frame is dropped (the next frame starts with a
        /// delimiter), before a safe state or at a stop.
        func dropPartial(_ partial: inout PartialFrame?) {
            guard partial != nil else { return }
            partial = nil
            direct?.abandonPartialWrite()
        }

        var acceptsCommands: Bool { ActuatorLifecycle(code: lifecycle.load(ordering: .acquiring)).acceptsCommands }
        var state: ActuatorLifecycle.State { ActuatorLifecycle(code: lifecycle.load(ordering: .acquiring)).state }

        /// Runs one lifecycle transition on the atomic word (a compare-exchange loop: no lock).
        func transition(_ step: (inout ActuatorLifecycle) -> ActuatorLifecycle.Action) -> ActuatorLifecycle.Action {
            var raw = lifecycle.load(ordering: .acquiring)
            while true {
                var machine = ActuatorLifecycle(code: raw)
                let action = step(&machine)
                let (done, seen) = lifecycle.compareExchange(expected: raw, desired: machine.code, ordering: .acquiringAndReleasing)
                if done { return action }
                raw = seen
            }
        }
    }

    private struct Route {
        let lane: Int
        let slot: Int
    }

    /// A frame a direct write left partly on the wire, for the writer to finish or drop.
    struct PartialFrame: Sendable, Equatable {
        /// nil: a channel's safe value (always finished).
        var command: ApprovedCommand?
        /// `emergencyStops` read before the direct write's checks.
        var stopsBefore: UInt64
    }

    private enum DirectOutcome {
        case written
        /// Partly written: the writer finishes it.
        case handedOver
        /// Not attempted or nothing went out: the mailbox, as a threaded lane.
        case deferred
    }

    public let seal: GuardSeal
    public let mode: Mode
    private let clock: any SchedulerClock
    /// What every device write gets: permission, with the seal and clock to check an approval
    /// again where a back end sends it later (MQTT).
    private let token: DeviceWriteToken
    private let lanes: [Lane]
    /// Indexed by channel index (small, dense): no hashing on the control path.
    private let routes: [Route?]
    private let logger: Logger
    private let onFault: @Sendable (Fault) -> Void
    public let refused = Atomic<UInt64>(0)
    public let written = Atomic<UInt64>(0)
    public let failures = Atomic<UInt64>(0)
    public let heartbeats = Atomic<UInt64>(0)
    public let emergencyStops = Atomic<UInt64>(0)
    /// Commands written while an emergency stop or a latch overtook them: each was followed at once
    /// by its channel's safe value.
    public let overtaken = Atomic<UInt64>(0)
    /// Seal refusals per kind.
    public let foreignGuardRefusals = Atomic<UInt64>(0)
    public let beforeLatchRefusals = Atomic<UInt64>(0)
    public let expiredRefusals = Atomic<UInt64>(0)
    /// Channels (bit per index < 64) put in their safe state by a seal refusal (or after an
    /// overtaken write) since the last `takeSafeStateNotices`, and per channel the approval instant
    /// of the command it replaced.
    private let safeStateNotices = Atomic<UInt64>(0)
    private let noticeApprovedAt: [NoticeSlot] = (0..<64).map { _ in NoticeSlot() }
    /// Every seal refusal, for telemetry to drain (bounded: when full the newest are dropped, counted
    /// in `lost`). Appended by every lane's writer (threaded) or the dispatch thread (inline):
    /// several producers, hence the multi-producer ring.
    public let sealRefusals: MultiProducerRing<SealRefusalRecord>
    /// Direct lanes: commands the dispatch thread wrote itself, ones it handed to the writer
    /// instead (device lock busy, an older command of the channel still waiting, a safe state to
    /// apply first, a seal refusal, the device full), and frames it left partly written.
    public let directWritten = Atomic<UInt64>(0)
    public let directDeferred = Atomic<UInt64>(0)
    public let directPartial = Atomic<UInt64>(0)
    /// Writers that got SCHED_FIFO.
    public let writersAtFIFO = Atomic<Int>(0)
    private let fifoWarned = Atomic<Bool>(false)

    /// Binds the set to the guard whose `seal` is given: approvals of any other guard, from before
    /// its latest latch, or past their validity never reach a device. `clock` decides validity
    /// (the scheduler's clock: virtual in lockstep tests, monotonic in the daemon).
    public init(seal: GuardSeal, backends: [any ActuatorBackend], clock: any SchedulerClock, mode: Mode = .inline,
                refusalLogCapacity: Int = 256, logger: Logger = Logger(label: "robotd.actuators"),
                onFault: @escaping @Sendable (Fault) -> Void = { _ in }) throws {
        var routes: [Route?] = []
        var owner: [Int: String] = [:]
        for (i, backend) in backends.enumerated() {
            for (slot, channel) in backend.channels.enumerated() {
                guard channel.index >= 0 else {
                    throw ActuatorError(.unknownChannel, backend: backend.name, detail: "negative channel index")
                }
                if let other = owner[channel.index] {
                    throw ActuatorError(.unknownChannel, backend: backend.name,
                                        detail: "channel \(channel.index) is also driven by \(other)")
                }
                owner[channel.index] = backend.name
                if routes.count <= channel.index { routes += Array(repeating: nil, count: channel.index + 1 - routes.count) }
                routes[channel.index] = Route(lane: i, slot: slot)
            }
        }
        var direct: Set<String> = []
        if case .threaded(let options) = mode { direct = options.directWrites }
        for name in direct {
            guard let backend = backends.first(where: { $0.name == name }) else {
                throw ActuatorError(.unknownChannel, backend: name, detail: "direct writes asked for a back end the set does not have")
            }
            guard backend is any DirectWriting, backend.channels.count <= 64 else {
                throw ActuatorError(.unsupported, backend: name,
                                    detail: "direct writes need a back end that can send a frame without waiting (serial frames), with at most 64 channels")
            }
        }
        self.seal = seal
        self.mode = mode
        self.clock = clock
        token = DeviceWriteToken(seal: SealClock(seal: seal, clock: clock))
        self.routes = routes
        lanes = backends.map { Lane($0, direct: direct.contains($0.name)) }
        sealRefusals = MultiProducerRing(capacity: max(1, refusalLogCapacity))
        self.logger = logger
        self.onFault = onFault
    }

    deinit {
        stopWriters()
    }

    // MARK: Lifecycle

    /// Configures and activates every back end (each starts from its safe state); threaded, starts
    /// the writers.
    public func start() {
        for lane in lanes {
            lane.io.withLock { partial in
                lane.dropPartial(&partial)
                _ = lane.transition { $0.configure() }
                perform(lane.transition { $0.activate() }, on: lane, logFailure: true)
            }
        }
        if case .threaded(let options) = mode { startWriters(options) }
    }

    /// Brings a back end back after a fault (e.g. reconnected): safe state first, then active.
    /// Runs on the dispatch thread. Threaded: the writer applies the safe state before anything
    /// else it sends; true means the back end is active again with that safe state pending.
    public func reactivate(_ name: String) -> Bool {
        guard let lane = lane(named: name), lane.backend.isConnected else { return false }
        switch mode {
        case .inline:
            return lane.io.withLock { partial in
                lane.dropPartial(&partial)
                return perform(lane.transition { $0.activate() }, on: lane, logFailure: false)
            }
        case .threaded:
            let action = lane.transition { $0.activate() }
            if action == .applySafeState {
                lane.safeStatePending.store(true, ordering: .releasing)
                lane.bell.ring()
            }
            return action != .refuse
        }
    }

    /// The step that always runs on the way out (signal, shutdown, crash of a back end): every
    /// back end gets its safe state and is finalized, then the writers stop. Errors are logged,
    /// never thrown: one failing back end must not keep the others from their safe state. Not for
    /// the dispatch thread (it may wait for a writer's bounded device write).
    public func safeStop(reason: String) {
        for lane in lanes {
            _ = lane.transition { $0.finalize() }
            _ = lane.io.withLock { partial in
                lane.dropPartial(&partial)
                return perform(.applySafeState, on: lane, logFailure: true)
            }
        }
        stopWriters()
        logger.notice("actuators in safe state: \(reason)")
    }

    /// For a supervisor thread when the dispatch thread may be stuck inside a handler (holding the
    /// runtime's control lock) and a writer may be blocked on its device: takes no lock that either
    /// may hold. Every back end goes inactive (atomics: it needs `reactivate`), its mailboxes are
    /// flushed by its writer, and:
    /// - `EmergencyStopping` back ends write their safe state at once (serial: preencoded frames,
    ///   one non-blocking write(2); MQTT: a publish through libmosquitto);
    /// - others get it from whoever holds their device lock next, if it is free now right here
    ///   (try-lock, never a wait), else from their writer as soon as it is free.
    /// Returns true when every back end's safe state went out now. Never logs, never throws.
    @discardableResult
    public func emergencySafeState() -> Bool {
        // Every back end out of active first, then the count, then the frames: a writer (or a
        // direct write) reads the count before its lifecycle check and again after its device
        // write, so either it saw the back end inactive and wrote nothing, or its write precedes
        // the safe frames, or it sees the count moved and follows with the safe value.
        var i = 0
        while i < lanes.count {
            _ = lanes[i].transition { $0.fault() }
            lanes[i].flushPending.store(true, ordering: .releasing)
            i += 1
        }
        emergencyStops.add(1, ordering: .acquiringAndReleasing)
        var all = true
        i = 0
        while i < lanes.count {
            let lane = lanes[i]
            i += 1
            if let emergency = lane.emergency {
                do { try emergency.emergencySafeState(token: token) } catch {
                    all = false
                    lane.safeStatePending.store(true, ordering: .releasing)
                }
            } else {
                let done = lane.io.withLockIfAvailable { partial -> Bool in
                    lane.dropPartial(&partial)
                    return (try? lane.backend.applySafeState(token: token)) != nil
                } ?? false
                if !done {
                    all = false
                    lane.safeStatePending.store(true, ordering: .releasing)
                }
            }
            lane.bell.ring()
        }
        return all
    }

    // MARK: The control path

    /// Hands one guard-approved command to its back end. Threaded: lock-free and allocation-free
    /// (the latest-per-channel mailbox and a futex wake); the seal is checked by the writer when it
    /// dequeues. A direct lane: written here when that costs no wait (`writeDirect`), else as
    /// threaded. Inline: checked and written here. One caller at a time (the runtime's control
    /// lock serialises its writes).
    @discardableResult
    public func write(_ command: ApprovedCommand) -> WriteOutcome {
        let index = command.channel.index
        guard index >= 0, index < routes.count, let route = routes[index] else { return .noBackend }
        let lane = lanes[route.lane]
        guard lane.acceptsCommands else {
            refused.add(1, ordering: .relaxed)
            return .refused
        }
        switch mode {
        case .threaded:
            if let direct = lane.direct {
                switch writeDirect(command, on: lane, slot: route.slot, backend: direct) {
                case .written: return .written
                case .handedOver:
                    lane.bell.ring()
                    return .queued
                case .deferred: break
                }
            }
            lane.mailboxes[route.slot].publish(command)
            lane.bell.ring()
            return .queued
        case .inline:
            var fault: Fault?
            let outcome = lane.io.withLock { _ in deliver(command, on: lane, fault: &fault) }
            if let fault { onFault(fault) }
            return outcome
        }
    }

    /// Asks every back end that speaks a heartbeat to send one. Real-time safe in threaded mode
    /// (a flag and a wake per back end); inline, sent here.
    public func heartbeat() {
        var i = 0
        while i < lanes.count {
            let lane = lanes[i]
            i += 1
            guard lane.beat != nil, lane.acceptsCommands else { continue }
            switch mode {
            case .threaded:
                lane.heartbeatPending.store(true, ordering: .releasing)
                lane.bell.ring()
            case .inline:
                var fault: Fault?
                lane.io.withLock { _ in sendHeartbeat(on: lane, fault: &fault) }
                if let fault { onFault(fault) }
            }
        }
    }

    // MARK: Queries

    /// The guard channels a back end drives (empty for an unknown name).
    public func channels(of name: String) -> [ChannelID] { lane(named: name)?.channels ?? [] }

    /// Channels put in their safe state by a seal refusal (or after an overtaken write) since the
    /// last call (bit per channel index), for the guard's `noteSafeStateApplied`. Lock-free.
    public func takeSafeStateNotices() -> UInt64 { safeStateNotices.exchange(0, ordering: .acquiringAndReleasing) }

    /// The approval instant of the command a channel's last safe-state notice replaced: pass it to
    /// `noteSafeStateApplied(…, replacing:)` so that a later guard command is not overridden.
    public func safeStateNoticeReplaced(_ channel: ChannelID) -> Instant {
        guard channel.index >= 0 && channel.index < noticeApprovedAt.count else { return .distantFuture }
        return Instant(nanoseconds: noticeApprovedAt[channel.index].value.load(ordering: .acquiring))
    }

    private func noteSafeState(_ replaced: ApprovedCommand) {
        let i = replaced.channel.index
        guard i >= 0 && i < noticeApprovedAt.count else { return }
        noticeApprovedAt[i].value.store(replaced.approvedAt.nanoseconds, ordering: .releasing)
        safeStateNotices.bitwiseOr(1 << UInt64(i), ordering: .releasing)
    }

    /// The back ends' names, in the order they were given.
    public var backendNames: [String] { lanes.map(\.backend.name) }
    /// Some back end is not active (failed and not yet reactivated, or never started): lock-free,
    /// for the guard's tick. A finalized one (the set's deliberate stop) is not a failure.
    public var anyBackendInactive: Bool {
        var i = 0
        while i < lanes.count {
            let state = lanes[i].state
            if state == .inactive || state == .unconfigured { return true }
            i += 1
        }
        return false
    }

    public func state(of name: String) -> ActuatorLifecycle.State? { lane(named: name)?.state }

    public func refusals(_ kind: GuardSeal.Refusal) -> UInt64 {
        switch kind {
        case .foreignGuard: foreignGuardRefusals.load(ordering: .relaxed)
        case .beforeLatch: beforeLatchRefusals.load(ordering: .relaxed)
        case .expired: expiredRefusals.load(ordering: .relaxed)
        }
    }

    /// Mailbox traffic of a back end's channels (threaded mode), summed.
    public func mailboxCounts(of name: String) -> MailboxCounts? {
        guard let lane = lane(named: name) else { return nil }
        var counts = MailboxCounts()
        for box in lane.mailboxes {
            counts.published += box.published.load(ordering: .relaxed)
            counts.superseded += box.superseded.load(ordering: .relaxed)
            counts.taken += box.taken.load(ordering: .relaxed)
        }
        return counts
    }

    private func lane(named name: String) -> Lane? {
        var i = 0
        while i < lanes.count {
            if lanes[i].name == name { return lanes[i] }
            i += 1
        }
        return nil
    }

    /// Runs `body` while holding every back end's device lock (tests: "the writer is blocked").
    func withDeviceLocksHeld(_ body: () -> Void) {
        func hold(_ i: Int) {
            guard i < lanes.count else { return body() }
            lanes[i].io.withLock { _ in hold(i + 1) }
        }
        hold(0)
    }

    /// Runs `body` while every writer thread wakes but does nothing (tests: "the writer has not
    /// got round to it yet"), then lets them catch up.
    func withWritersPaused(_ body: () throws -> Void) rethrows {
        for lane in lanes { lane.paused.store(true, ordering: .releasing) }
        withDeviceLocksHeld {}  // a pass already under way ends first
        defer {
            for lane in lanes {
                lane.paused.store(false, ordering: .releasing)
                lane.bell.ring()
            }
        }
        try body()
    }

    // MARK: The direct path (dispatch thread, a direct lane)

    /// Writes `command` now if and only if nothing has to wait for it: the device lock is free
    /// (tried once), no older command of this channel is waiting for the writer, no frame is left
    /// half written, no safe state is pending, the seal admits it, and the back end's one
    /// non-blocking write(2) takes the whole frame. `.deferred`: nothing went out — the caller
    /// queues the command, and the writer then does what it does for any command (a seal refusal
    /// included: counted, recorded and replaced by the safe value there, by the same code).
    /// No allocation, no lock waited for, no log, no fault reported here.
    private func writeDirect(_ command: ApprovedCommand, on lane: Lane, slot: Int, backend: any DirectWriting) -> DirectOutcome {
        // Read before the lifecycle check, as in `deliver` (see `emergencySafeState`).
        let stopsBefore = emergencyStops.load(ordering: .acquiring)
        let outcome = lane.io.withLockIfAvailable { partial -> DirectOutcome in
            guard partial == nil, lane.acceptsCommands, !lane.mailboxes[slot].hasPending,
                  !lane.safeStatePending.load(ordering: .acquiring), !lane.flushPending.load(ordering: .acquiring),
                  lane.pendingSafeValues.load(ordering: .acquiring) == 0, backend.isConnected,
                  seal.admit(command, now: clock.now()) == nil else { return .deferred }
            switch backend.tryWrite(command, token: token) {
            case .notSent:
                return .deferred
            case .partial:
                partial = PartialFrame(command: command, stopsBefore: stopsBefore)
                directPartial.add(1, ordering: .relaxed)
                return .handedOver
            case .written:
                written.add(1, ordering: .relaxed)
                directWritten.add(1, ordering: .relaxed)
                if emergencyStops.load(ordering: .acquiring) != stopsBefore || seal.epoch != command.epoch {
                    // Overtaken, as in `deliver`: the channel's safe value follows at once, or
                    // from the writer before anything else when it cannot go out now.
                    overtaken.add(1, ordering: .relaxed)
                    switch backend.trySafeValue(channel: command.channel, token: token) {
                    case .written: break
                    case .partial:
                        partial = PartialFrame(command: nil, stopsBefore: stopsBefore)
                        lane.bell.ring()
                    case .notSent:
                        lane.pendingSafeValues.bitwiseOr(1 << UInt64(slot), ordering: .releasing)
                        lane.bell.ring()
                    }
                    noteSafeState(command)
                }
                return .written
            }
        } ?? .deferred
        if outcome == .deferred { directDeferred.add(1, ordering: .relaxed) }
        return outcome
    }

    /// Writer thread, holding `io`: the frame a direct write left partly written is finished when
    /// it may still go out — the checks of `deliver` — and dropped otherwise (a refusal then gets
    /// the channel's safe value, as in `deliver`). A safe value's rest is always finished.
    private func settle(_ pending: PartialFrame, on lane: Lane, fault: inout Fault?) {
        guard let direct = lane.direct else { return }
        guard let command = pending.command else {
            do { try direct.finishPartialWrite(token: token) } catch { fault = fail(lane, error) }
            return
        }
        let now = clock.now()
        let refusal = seal.admit(command, now: now)
        guard refusal == nil, lane.acceptsCommands, emergencyStops.load(ordering: .acquiring) == pending.stopsBefore,
              lane.backend.isConnected else {
            // Stopped, faulted or refused meanwhile: the fragment is dropped (whoever stopped the
            // back end applies its safe state; a refusal gets the channel's safe value here).
            direct.abandonPartialWrite()
            if let refusal { refuse(command, refusal, now: now, on: lane, fault: &fault) }
            return
        }
        do {
            try direct.finishPartialWrite(token: token)
            written.add(1, ordering: .relaxed)
            if emergencyStops.load(ordering: .acquiring) != pending.stopsBefore || seal.epoch != command.epoch {
                overtaken.add(1, ordering: .relaxed)
                try lane.backend.applySafeState(channel: command.channel, token: token)
                noteSafeState(command)
            }
        } catch {
            fault = fail(lane, error)
        }
    }

    // MARK: Where the bytes leave (caller holds the lane's io lock)

    /// Lifecycle, pending safe state, seal — then the device. A refused approval is replaced by the
    /// channel's safe value, de-energised.
    private func deliver(_ command: ApprovedCommand, on lane: Lane, fault: inout Fault?) -> WriteOutcome {
        // Read before every check: if the supervisor's emergency stop (or a latch) lands between
        // these checks and the device write, the write below must not be the last word. Before
        // the lifecycle check too: the emergency stop takes the back end out of active before it
        // counts (`emergencySafeState`).
        let stopsBefore = emergencyStops.load(ordering: .acquiring)
        guard lane.acceptsCommands else {
            refused.add(1, ordering: .relaxed)
            return .refused
        }
        if lane.safeStatePending.exchange(false, ordering: .acquiringAndReleasing) {
            do { try lane.backend.applySafeState(token: token) } catch {
                fault = fail(lane, error)
                return .failed(fault?.error ?? ActuatorError(.writeFailed, backend: lane.name))
            }
        }
        let now = clock.now()
        if let refusal = seal.admit(command, now: now) {
            refuse(command, refusal, now: now, on: lane, fault: &fault)
            return .sealRefused(refusal)
        }
        do {
            guard lane.backend.isConnected else { throw ActuatorError(.disconnected, backend: lane.name) }
            try lane.backend.write(command, token: token)
            written.add(1, ordering: .relaxed)
            if emergencyStops.load(ordering: .acquiring) != stopsBefore || seal.epoch != command.epoch {
                // Overtaken: an emergency stop or a latch came while this command was on its way
                // out. Follow it with the channel's safe value, so an energised frame is never last.
                overtaken.add(1, ordering: .relaxed)
                try lane.backend.applySafeState(channel: command.channel, token: token)
                noteSafeState(command)
            }
            return .written
        } catch {
            let reported = fail(lane, error)
            fault = reported
            return .failed(reported.error)
        }
    }

    /// A refused approval: counted, recorded, replaced by the channel's safe value.
    private func refuse(_ command: ApprovedCommand, _ refusal: GuardSeal.Refusal, now: Instant, on lane: Lane, fault: inout Fault?) {
        switch refusal {
        case .foreignGuard: foreignGuardRefusals.add(1, ordering: .relaxed)
        case .beforeLatch: beforeLatchRefusals.add(1, ordering: .relaxed)
        case .expired: expiredRefusals.add(1, ordering: .relaxed)
        }
        sealRefusals.append(SealRefusalRecord(channel: command.channel, refusal: refusal, approvedAt: command.approvedAt, at: now))
        do { try lane.backend.applySafeState(channel: command.channel, token: token) } catch {
            fault = fail(lane, error)
        }
        // The guard must learn that this channel is at its safe value now, or its limiter would
        // allow the next approval a step from a speed the actuator no longer has.
        noteSafeState(command)
    }

    private func sendHeartbeat(on lane: Lane, fault: inout Fault?) {
        guard let beat = lane.beat, lane.acceptsCommands else { return }
        do {
            guard lane.backend.isConnected else { throw ActuatorError(.disconnected, backend: lane.name) }
            try beat.sendHeartbeat(token: token)
            heartbeats.add(1, ordering: .relaxed)
        } catch {
            fault = fail(lane, error)
        }
    }

    /// The back end failed: inactive, nothing queued survives, safe state attempted — the
    /// non-blocking emergency write when the back end has one (a stalled device would only stall
    /// again), else its ordinary safe state.
    private func fail(_ lane: Lane, _ error: any Error) -> Fault {
        failures.add(1, ordering: .relaxed)
        let failure = error as? ActuatorError ?? ActuatorError(.writeFailed, backend: lane.name, detail: "\(error)")
        _ = lane.transition { $0.fault() }
        lane.safeStatePending.store(false, ordering: .relaxed)
        lane.pendingSafeValues.store(0, ordering: .relaxed)  // the whole safe state follows
        let applied: Bool
        if let emergency = lane.emergency, failure.code == .stalled || mode != .inline {
            applied = (try? emergency.emergencySafeState(token: token)) != nil
        } else {
            applied = (try? lane.backend.applySafeState(token: token)) != nil
        }
        return Fault(backend: lane.name, error: failure, safeStateApplied: applied)
    }

    @discardableResult
    private func perform(_ action: ActuatorLifecycle.Action, on lane: Lane, logFailure: Bool) -> Bool {
        guard action == .applySafeState else { return action == .none }
        do {
            try lane.backend.applySafeState(token: token)
            return true
        } catch {
            if logFailure { logger.critical("could not apply the safe state of \(lane.name): \(error)") }
            return false
        }
    }

    // MARK: Writer threads

    private func startWriters(_ options: WriterOptions) {
        for lane in lanes {
            lane.thread.withLock { slot in
                guard slot == nil else { return }
                lane.stopping.store(false, ordering: .relaxed)
                let idle = Int64(options.idleWake / .nanoseconds(1))
                // Weak: the set owns its writers; its deinit stops them.
                slot = try? RealtimeThread(name: "act-\(lane.name)") { [weak self] in
                    self?.prepareWriter(options)
                    while !lane.stopping.load(ordering: .acquiring) {
                        lane.bell.wait(until: rt_monotonic_ns() + idle)
                        guard let set = self, !lane.stopping.load(ordering: .acquiring) else { return }
                        if lane.paused.load(ordering: .acquiring) { continue }
                        set.service(lane)
                    }
                }
            }
        }
    }

    private func prepareWriter(_ options: WriterOptions) {
        guard let priority = options.fifoPriority else { return }
        let rc = rt_set_fifo(Int32(priority))
        if rc == 0 {
            writersAtFIFO.add(1, ordering: .relaxed)
        } else if !fifoWarned.exchange(true, ordering: .relaxed) {
            let why = rc == EPERM ? "not permitted (needs root or CAP_SYS_NICE)" : SystemErrorWords.text(rc)
            logger.warning("actuator writers run SCHED_OTHER: SCHED_FIFO priority \(priority): \(why)")
        }
    }

    /// One writer pass: flush after an emergency, a frame a direct write left partly written,
    /// safe values an overtaken direct write could not send, the pending safe state, the newest
    /// command per channel, a heartbeat. Failures are logged and reported here, on the writer thread.
    private func service(_ lane: Lane) {
        var fault: Fault?
        var refusedNow = 0
        lane.io.withLock { partial in
            if lane.flushPending.exchange(false, ordering: .acquiringAndReleasing) {
                for box in lane.mailboxes where box.take() != nil { refused.add(1, ordering: .relaxed) }
            }
            if let pending = partial {
                partial = nil
                settle(pending, on: lane, fault: &fault)
            }
            var safeValues = lane.pendingSafeValues.exchange(0, ordering: .acquiringAndReleasing)
            while safeValues != 0 && fault == nil {
                let slot = safeValues.trailingZeroBitCount
                safeValues &= safeValues &- 1
                do { try lane.backend.applySafeState(channel: lane.channels[slot], token: token) } catch { fault = fail(lane, error) }
            }
            if lane.safeStatePending.exchange(false, ordering: .acquiringAndReleasing) {
                do { try lane.backend.applySafeState(token: token) } catch { fault = fail(lane, error) }
            }
            for box in lane.mailboxes where fault == nil {
                guard let command = box.take() else { continue }
                if case .sealRefused = deliver(command, on: lane, fault: &fault) { refusedNow += 1 }
            }
            if fault == nil && lane.heartbeatPending.exchange(false, ordering: .acquiringAndReleasing) {
                sendHeartbeat(on: lane, fault: &fault)
            }
            if fault != nil {
                // Nothing queued before the fault may go out after a reactivation.
                for box in lane.mailboxes where box.take() != nil { refused.add(1, ordering: .relaxed) }
            }
        }
        if refusedNow > 0 { logger.warning("\(lane.name): \(refusedNow) approval(s) refused by the guard's seal; safe value written instead") }
        if let fault {
            logger.error("actuator \(fault.backend) failed: \(fault.error); safe state \(fault.safeStateApplied ? "applied" : "could not be applied")")
            onFault(fault)
        }
    }

    private func stopWriters() {
        for lane in lanes {
            lane.stopping.store(true, ordering: .releasing)
            lane.bell.ring()
            let thread = lane.thread.withLock { slot -> RealtimeThread? in
                let current = slot
                slot = nil
                return current
            }
            thread?.join()
        }
    }
}

/// One channel's last safe-state notice: the approval instant of the command it replaced.
final class NoticeSlot: Sendable {
    let value = Atomic<Int64>(0)
}
