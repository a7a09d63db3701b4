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
/// `.inline` (lockstep tests on a virtual clock): no threads; the same checks and the device write
/// run inside `write`, so runs stay deterministic.
public final class ActuatorSet: Sendable {
    /// What happened to one write.
    public enum WriteOutcome: Sendable, Equatable {
        /// Inline: on the device.
        case written
        /// Threaded: in the channel's mailbox; the writer checks and sends it (or a newer one).
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
        public init(fifoPriority: Int? = nil, idleWake: Duration = .milliseconds(100)) {
            self.fifoPriority = fifoPriority
            self.idleWake = idleWake
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
        let bell = WriterBell()
        /// Serialises device I/O between the writer and start/stop/inline callers. The dispatch
        /// thread takes it only in inline mode; the emergency path never does.
        let io = Mutex<Int>(0)
        let thread = Mutex<RealtimeThread?>(nil)

        init(_ backend: any ActuatorBackend) {
            self.backend = backend
            name = backend.name
            channels = backend.channels
            beat = backend as? any HeartbeatSending
            emergency = backend as? any EmergencyStopping
            mailboxes = channels.map { _ in ChannelMailbox() }
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

    public let seal: GuardSeal
    public let mode: Mode
    private let clock: any SchedulerClock
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
        self.seal = seal
        self.mode = mode
        self.clock = clock
        self.routes = routes
        lanes = backends.map(Lane.init)
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
            lane.io.withLock { _ in
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
            return lane.io.withLock { _ in perform(lane.transition { $0.activate() }, on: lane, logFailure: false) }
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
            _ = lane.io.withLock { _ in perform(.applySafeState, on: lane, logFailure: true) }
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
        emergencyStops.add(1, ordering: .acquiringAndReleasing)  // before any safe frame: a writer mid-write sees it
        var all = true
        var i = 0
        while i < lanes.count {
            let lane = lanes[i]
            i += 1
            _ = lane.transition { $0.fault() }
            lane.flushPending.store(true, ordering: .releasing)
            if let emergency = lane.emergency {
                do { try emergency.emergencySafeState(token: DeviceWriteToken()) } catch {
                    all = false
                    lane.safeStatePending.store(true, ordering: .releasing)
                }
            } else {
                let done = lane.io.withLockIfAvailable { _ -> Bool in
                    (try? lane.backend.applySafeState(token: DeviceWriteToken())) != nil
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
    /// dequeues. Inline: checked and written here. One caller at a time (the runtime's control lock
    /// serialises its writes).
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

    // MARK: Where the bytes leave (caller holds the lane's io lock)

    /// Lifecycle, pending safe state, seal — then the device. A refused approval is replaced by the
    /// channel's safe value, de-energised.
    private func deliver(_ command: ApprovedCommand, on lane: Lane, fault: inout Fault?) -> WriteOutcome {
        guard lane.acceptsCommands else {
            refused.add(1, ordering: .relaxed)
            return .refused
        }
        if lane.safeStatePending.exchange(false, ordering: .acquiringAndReleasing) {
            do { try lane.backend.applySafeState(token: DeviceWriteToken()) } catch {
                fault = fail(lane, error)
                return .failed(fault?.error ?? ActuatorError(.writeFailed, backend: lane.name))
            }
        }
        let now = clock.now()
        // Read before the checks: if the supervisor's emergency stop (or a latch) lands between
        // these checks and the device write, the write below must not be the last word.
        let stopsBefore = emergencyStops.load(ordering: .acquiring)
        if let refusal = seal.admit(command, now: now) {
            switch refusal {
            case .foreignGuard: foreignGuardRefusals.add(1, ordering: .relaxed)
            case .beforeLatch: beforeLatchRefusals.add(1, ordering: .relaxed)
            case .expired: expiredRefusals.add(1, ordering: .relaxed)
            }
            sealRefusals.append(SealRefusalRecord(channel: command.channel, refusal: refusal, approvedAt: command.approvedAt, at: now))
            do { try lane.backend.applySafeState(channel: command.channel, token: DeviceWriteToken()) } catch {
                fault = fail(lane, error)
            }
            // The guard must learn that this channel is at its safe value now, or its limiter would
            // allow the next approval a step from a speed the actuator no longer has.
            noteSafeState(command)
            return .sealRefused(refusal)
        }
        do {
            guard lane.backend.isConnected else { throw ActuatorError(.disconnected, backend: lane.name) }
            try lane.backend.write(command, token: DeviceWriteToken())
            written.add(1, ordering: .relaxed)
            if emergencyStops.load(ordering: .acquiring) != stopsBefore || seal.epoch != command.epoch {
                // Overtaken: an emergency stop or a latch came while this command was on its way
                // out. Follow it with the channel's safe value, so an energised frame is never last.
                overtaken.add(1, ordering: .relaxed)
                try lane.backend.applySafeState(channel: command.channel, token: DeviceWriteToken())
                noteSafeState(command)
            }
            return .written
        } catch {
            let reported = fail(lane, error)
            fault = reported
            return .failed(reported.error)
        }
    }

    private func sendHeartbeat(on lane: Lane, fault: inout Fault?) {
        guard let beat = lane.beat, lane.acceptsCommands else { return }
        do {
            guard lane.backend.isConnected else { throw ActuatorError(.disconnected, backend: lane.name) }
            try beat.sendHeartbeat(token: DeviceWriteToken())
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
        let applied: Bool
        if let emergency = lane.emergency, failure.code == .stalled || mode != .inline {
            applied = (try? emergency.emergencySafeState(token: DeviceWriteToken())) != nil
        } else {
            applied = (try? lane.backend.applySafeState(token: DeviceWriteToken())) != nil
        }
        return Fault(backend: lane.name, error: failure, safeStateApplied: applied)
    }

    @discardableResult
    private func perform(_ action: ActuatorLifecycle.Action, on lane: Lane, logFailure: Bool) -> Bool {
        guard action == .applySafeState else { return action == .none }
        do {
            try lane.backend.applySafeState(token: DeviceWriteToken())
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

    /// One writer pass: flush after an emergency, the pending safe state, the newest command per
    /// channel, a heartbeat. Failures are logged and reported here, on the writer thread.
    private func service(_ lane: Lane) {
        var fault: Fault?
        var refusedNow = 0
        lane.io.withLock { _ in
            if lane.flushPending.exchange(false, ordering: .acquiringAndReleasing) {
                for box in lane.mailboxes where box.take() != nil { refused.add(1, ordering: .relaxed) }
            }
            if lane.safeStatePending.exchange(false, ordering: .acquiringAndReleasing) {
                do { try lane.backend.applySafeState(token: DeviceWriteToken()) } catch { fault = fail(lane, error) }
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
