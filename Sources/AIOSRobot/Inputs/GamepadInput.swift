import RTScheduler
import SafetyGuard
import Synchronization
import Transports

/// Gamepads, e-stop buttons and switches (evdev) turned into events: axes go to a
/// keep-latest-per-key source (key = axis index, so a busy dispatcher only ever sees the newest
/// stick position), buttons and resyncs to a second source; the e-stop action also goes to a
/// critical source of its own so that it never waits behind teleop traffic.
public final class GamepadInput: Sendable {
    public struct Sources: Sendable {
        public var axes: SourceHandle
        public var buttons: SourceHandle
        public var emergencyStop: SourceHandle?
        public init(axes: SourceHandle, buttons: SourceHandle, emergencyStop: SourceHandle? = nil) {
            self.axes = axes
            self.buttons = buttons
            self.emergencyStop = emergencyStop
        }
    }

    /// Codes used in `.signal(code:value:)` payloads on the buttons source.
    public enum SignalCode {
        public static let emergencyStop: Int32 = 1
        public static let deadman: Int32 = 2
        /// Events were lost (SYN_DROPPED), or the device: the deadman is not held (unknown after
        /// lost events, released after the device's loss) until its next event.
        public static let resync: Int32 = 3
        /// Mode and named actions: 100 + their index in the mapping's key list.
        public static let actionBase: Int32 = 100
    }

    /// The key action that hands the wheels back from a holding teleop to the policies below it.
    public static let handback = InputMapping.Action.named("handback")

    /// A key's level as the reader knows it. The kernel reports a key only when it changes, so
    /// after lost events (SYN_DROPPED) or an opening a key held all along reports nothing: its
    /// level is unknown — neither held nor released — until its next event.
    public enum KeyLevel: UInt8, AtomicRepresentable, Sendable {
        case released = 0
        case pressed = 1
        case unknown = 2
    }

    public let mapping: InputMapping
    public let sources: Sources
    /// The e-stop key's level and sticky press count, set here on the reader thread and read by
    /// every guard tick: a press is never lost to a full queue.
    public let estop: EStopSignal?
    public let refused = Atomic<UInt64>(0)
    /// The deadman key as a level (set on the reader thread; queued key events can be coalesced
    /// or dropped, a level cannot): released at the device's loss; unknown after the device's
    /// (re)opening and after a resync until its next event — or, at a real device's opening, until
    /// the key state read then (`keysAtOpen`).
    public let deadmanLevel = Atomic<KeyLevel>(.unknown)
    /// When the deadman last changed (arrival, ns); 0: never.
    public let deadmanChangedAt = Atomic<Int64>(0)
    /// When the deadman was last pressed from released — an edge (arrival, ns); 0: never. The
    /// kernel reports a key only when it changes, so a key held since before the device was opened
    /// never shows one: teleop enables only on an edge after its last disarming event.
    public let deadmanPressedAt = Atomic<Int64>(0)
    /// When the device was last opened, came back or was lost (arrival, ns); 0: never. A deadman
    /// press must come after it to enable anything.
    public let connectionChangedAt = Atomic<Int64>(0)
    /// When the `handback` key was last released after a press seen here, with the deadman
    /// known released at its press, at its release and in between, and no events lost meanwhile
    /// (arrival, ns); 0: never. It acts on the release edge, as the reset does: a key stuck down
    /// hands nothing back.
    public let handbackAt = Atomic<Int64>(0)
    /// Hand-back releases refused because the deadman was held or unknown at the key's press or
    /// at its release, or pressed in between, or events were lost in between.
    public let handbacksRefused = Atomic<UInt64>(0)
    /// Each axis's latest normalised position (a `Double` bit pattern), by the mapping's axis
    /// order, set here on the reader thread before the same frame's keys: the policies read these
    /// levels, so a deadman press is never seen with sticks older than it (the axes queue may lag
    /// behind, whatever its priority). NaN: not reported since the device was opened or lost.
    public let axisLevels: [AxisLevel]
    public final class AxisLevel: Sendable {
        let bits = Atomic<UInt64>(Double.nan.bitPattern)
        public var value: Double { Double(bitPattern: bits.load(ordering: .acquiring)) }
        func set(_ value: Double) { bits.store(value.bitPattern, ordering: .releasing) }
    }
    final class State: @unchecked Sendable {
        // Touched only by the reader thread that calls `feed`.
        var decoder = InputEventStreamDecoder()
        var assembler: InputFrameAssembler
        /// The hand-back key's press was seen (its release acts) …
        var handbackDown = false
        /// … with the deadman known released at its press, not pressed since, and no events lost since.
        var handbackArmed = false
        init(_ assembler: InputFrameAssembler) { self.assembler = assembler }
    }
    private let state: State
    private let axisIndex: [String: Int]
    private let keyIndex: [InputMapping.Action: Int]

    /// Refuses a mapping whose axes or keys do not each have a slot of their own
    /// (`InputMapping.validate`: a code, an axis name or an action given twice): the slots the
    /// reader fills and the ones the policies and handlers read must be the same, one for one.
    public init(mapping: InputMapping, sources: Sources, estop: EStopSignal? = nil) throws(InputError) {
        self.mapping = mapping
        self.sources = sources
        self.estop = estop
        state = State(try InputFrameAssembler(mapping: mapping))  // validates the mapping
        var axisIndex: [String: Int] = [:]
        for (i, axis) in mapping.axes.enumerated() { axisIndex[axis.name] = i }
        var keyIndex: [InputMapping.Action: Int] = [:]
        for key in mapping.keys { keyIndex[key.action] = mapping.actionSlot(key.action) }
        axisLevels = mapping.axes.map { _ in AxisLevel() }
        // What `validate` guarantees, checked where it is relied on: one level per axis, one slot per action.
        guard axisIndex.count == mapping.axes.count, axisLevels.count == mapping.axes.count, keyIndex.count == mapping.keys.count else {
            throw InputError("the mapping's \(mapping.axes.count) axes and \(mapping.keys.count) keys do not have a slot each "
                             + "(\(axisIndex.count) axis names, \(keyIndex.count) actions)")
        }
        self.axisIndex = axisIndex
        self.keyIndex = keyIndex
    }

    /// The signal code of a key's action on the buttons source, as this mapping posts it; nil: the
    /// mapping has no key with that action.
    public static func signalCode(of action: InputMapping.Action, in mapping: InputMapping) -> Int32? {
        switch action {
        case .emergencyStop: mapping.actionSlot(action).map { _ in SignalCode.emergencyStop }
        case .deadman: mapping.actionSlot(action).map { _ in SignalCode.deadman }
        case .mode, .named: mapping.actionSlot(action).map { SignalCode.actionBase + Int32($0) }
        }
    }

    /// Raw input_event bytes (FIFO, file) with their arrival (ns).
    public func feed(bytes: UnsafeRawBufferPointer, arrival: Int64) {
        state.decoder.feed(bytes) { event in feed(event: event, arrival: arrival) }
    }

    /// One event from libevdev (a real device) or the stream decoder.
    public func feed(event: InputEvent, arrival: Int64) {
        if event.type == 0 && event.code == 0 { estop?.noteFrame(at: arrival) }  // SYN_REPORT: the device is alive
        state.assembler.feed(event) { change in post(change, release: Instant(nanoseconds: arrival)) }
    }

    /// The stream's writer went away: drop its unfinished frame (reader thread).
    public func writerGone() {
        state.decoder = InputEventStreamDecoder()
        state.assembler.discardPartialFrame()
    }

    /// The device is gone (EOF, ENODEV, the FIFO's writer): whatever it held is released — the
    /// deadman first, as a level the policies read directly, then as an event. No e-stop press is
    /// implied (the e-stop device's loss is its own stop cause).
    public func deviceLost(arrival: Int64) {
        deadmanLevel.store(.released, ordering: .releasing)
        deadmanChangedAt.store(arrival, ordering: .releasing)
        forgetAxes()
        connectionChangedAt.store(arrival, ordering: .releasing)
        state.handbackDown = false
        state.handbackArmed = false
        if !sources.buttons.post(.signal(code: SignalCode.resync, value: 1), release: Instant(nanoseconds: arrival)).wasAccepted {
            refused.add(1, ordering: .relaxed)
        }
    }

    /// The device was opened or is back (a FIFO's next writer): whatever it reports from now on is
    /// new, and a deadman held through the reconnection enables nothing until pressed again. Stick
    /// positions from before are forgotten (unknown until reported: a real device's are read at
    /// open, a stream's writer sends them first). The deadman's level is unknown until its next
    /// event or a real device's key state read at open (`keysAtOpen`): a key held since before the
    /// opening reports no event, and must not pass for released.
    public func deviceOpened(arrival: Int64) {
        forgetAxes()
        connectionChangedAt.store(arrival, ordering: .releasing)
        deadmanUnknown(at: arrival)
    }

    /// The keys whose levels a device reports right after its opening (libevdev names): the
    /// deadman's, so one held since before the opening is known held, one up known released.
    /// And the e-stop's: one latched down while the device was closed (or robotd was not running)
    /// sends no event at the opening, and must not pass for released.
    public var keysReadAtOpen: [String] {
        mapping.keys.filter { $0.action == .deadman || $0.action == .emergencyStop }.map(\.code)
    }

    /// The levels a device reported right after `deviceOpened` (EVIOCGKEY; reader thread, before
    /// its first event): the deadman's level becomes known — no press edge, so a deadman held
    /// since before the opening enables nothing until released and pressed again, and one known up
    /// arms a hand-back at once. Without its code there the deadman stays unknown. Returns the
    /// log's words.
    ///
    /// An e-stop key down at the opening is a press, through the same path as its event: the
    /// guard latches, and refuses a reset while it is held. One up makes the level known (the
    /// opening left it unknown, which counts as held); its release instant is the reading's, so a
    /// reset key held since before the opening is refused as held through the release. One not
    /// read stays unknown, and held, until the key's next event.
    @discardableResult
    public func keysAtOpen(_ levels: [UInt16: Bool], arrival: Int64) -> String {
        var words: [String] = []
        for key in mapping.keys where key.action == .emergencyStop {
            guard let code = InputEvent.code(named: key.code), let down = levels[code.code] else {
                words.append("e-stop \(key.code) unknown at open (its state not read): held until the key reports a level — press and release it")
                continue
            }
            if down {
                post(.key(action: .emergencyStop, pressed: true), release: Instant(nanoseconds: arrival))
            } else {
                estop?.set(pressed: false, at: arrival)  // a level, not an event: nothing was released by a hand
            }
            words.append("e-stop \(key.code) \(down ? "HELD at open: a press" : "up at open")")
        }
        words.append(deadmanAtOpen(levels, arrival: arrival))
        return words.joined(separator: "; ")
    }

    private func deadmanAtOpen(_ levels: [UInt16: Bool], arrival: Int64) -> String {
        guard let key = mapping.keys.first(where: { $0.action == .deadman }) else { return "no deadman mapped" }
        guard let code = InputEvent.code(named: key.code), let down = levels[code.code] else {
            return "deadman \(key.code) unknown at open (its state not read)"
        }
        let level: KeyLevel = down ? .pressed : .released
        // From unknown only: a level the device's own events set since then is newer.
        if deadmanLevel.compareExchange(expected: .unknown, desired: level, ordering: .acquiringAndReleasing).exchanged {
            deadmanChangedAt.store(arrival, ordering: .releasing)
        }
        return "deadman \(key.code) \(down ? "held" : "up") at open"
    }

    /// Lost events or an opening: the deadman's level is unknown until its next event (neither
    /// held, so nothing enables, nor released, so nothing is handed back), and a hand-back whose
    /// press came before counts for nothing (reader thread).
    private func deadmanUnknown(at arrival: Int64) {
        state.handbackArmed = false
        if deadmanLevel.exchange(.unknown, ordering: .acquiringAndReleasing) != .unknown {
            deadmanChangedAt.store(arrival, ordering: .releasing)
        }
    }

    private func forgetAxes() {
        for level in axisLevels { level.set(.nan) }
    }

    /// libevdev resynchronised a real device after SYN_DROPPED.
    public func resynchronised(arrival: Int64) {
        state.assembler.resynchronised { change in post(change, release: Instant(nanoseconds: arrival)) }
    }

    private func post(_ change: InputChange, release: Instant) {
        let result: PostResult
        switch change {
        case .axis(let name, let value):
            // The assembler reports only the mapping's axes, each of which has its level (init):
            // a name without one is counted and goes nowhere, never to another axis's slot.
            guard let index = axisIndex[name], axisLevels.indices.contains(index) else {
                refused.add(1, ordering: .relaxed)
                return
            }
            axisLevels[index].set(value)  // first: the level holds even if the event is refused
            result = sources.axes.post(.scalar(value), key: UInt32(index), release: release)
        case .key(let action, let pressed):
            guard let slot = keyIndex[action] else {
                refused.add(1, ordering: .relaxed)
                return
            }
            let code: Int32 = switch action {
            case .emergencyStop: SignalCode.emergencyStop
            case .deadman: SignalCode.deadman
            case .mode, .named: SignalCode.actionBase + Int32(slot)
            }
            if action == .deadman {
                // From unknown, a press counts as an edge, as it always did after a resync: the
                // sticks, unknown too, still have to be reported centred before it enables.
                if pressed && deadmanLevel.load(ordering: .acquiring) != .pressed {
                    deadmanPressedAt.store(release.nanoseconds, ordering: .releasing)
                }
                if pressed { state.handbackArmed = false }  // a hand-back key held across a deadman press hands nothing back
                deadmanLevel.store(pressed ? .pressed : .released, ordering: .releasing)
                deadmanChangedAt.store(release.nanoseconds, ordering: .releasing)
            }
            if action == Self.handback {
                // Both edges with the deadman known released: a press made while driving (a grip
                // closing on both keys) must not hand the wheels over when the pad is let go, nor
                // one made while lost events (or an opening) hide whether the deadman is held.
                let released = deadmanLevel.load(ordering: .acquiring) == .released
                if pressed {
                    state.handbackDown = true
                    state.handbackArmed = released
                } else if state.handbackDown {
                    state.handbackDown = false
                    if !released || !state.handbackArmed {
                        handbacksRefused.add(1, ordering: .relaxed)  // only with the deadman known released throughout
                    } else {
                        handbackAt.store(release.nanoseconds, ordering: .releasing)
                    }
                }
            }
            if action == .emergencyStop {
                estop?.set(pressed: pressed, at: release.nanoseconds)  // first: the flag holds even if the event below is refused
                if let source = sources.emergencyStop,
                   !source.post(.signal(code: code, value: pressed ? 1 : 0), release: release).wasAccepted {
                    refused.add(1, ordering: .relaxed)
                }
            }
            result = sources.buttons.post(.signal(code: code, value: pressed ? 1 : 0), release: release)
        case .resync:
            // Events were lost: an e-stop press among them cannot be ruled out, so it counts as one
            // (the guard latches; a reset is needed). The held level stays what was last seen:
            // libevdev's resync reports only keys whose state changed, and a stream none.
            estop?.notePossiblePress()
            // Lost events may have moved the sticks: unknown (not centred) until reported again.
            forgetAxes()
            // And pressed or released any key: the deadman is unknown until its next event (a
            // held deadman ends a drive; a released one no longer arms a hand-back), and a
            // hand-back pressed before the loss counts for nothing.
            deadmanUnknown(at: release.nanoseconds)
            result = sources.buttons.post(.signal(code: SignalCode.resync, value: 1), release: release)
        }
        if !result.wasAccepted { refused.add(1, ordering: .relaxed) }
    }
}

