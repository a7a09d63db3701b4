import Synchronization

/// The e-stop as the input thread sees it, for the guard to read on every tick: never an event in
/// a queue that could overwrite or reject it. The input thread sets the level and bumps a sticky
/// press counter (so a press and release between two ticks still latches); the device supervisor
/// marks the device lost when its reader ends. Lock-free; any thread.
public final class EStopSignal: Sendable {
    private let held = Atomic<Bool>(false)
    private let pressCount = Atomic<UInt64>(0)
    private let lost = Atomic<Bool>(false)
    private let released = Atomic<Int64>(0)
    private let lastFrame = Atomic<Int64>(0)
    private let unknown = Atomic<Bool>(false)

    public init() {}

    /// The e-stop key went down (`true`) or up, at `arrival` (ns, the scheduler's clock). Input thread.
    public func set(pressed: Bool, at arrival: Int64) {
        if pressed {
            pressCount.add(1, ordering: .releasing)
        } else {
            released.store(arrival, ordering: .releasing)
        }
        held.store(pressed, ordering: .releasing)
        unknown.store(false, ordering: .releasing)  // after `held`: never a moment read as neither
    }

    /// The device was opened (or its stream's writer came back): until its key reports a level —
    /// an event, or a key state read at open — the level is unknown. A mushroom latched down
    /// while the device was closed sends no event at the opening, so unknown must not pass for
    /// released: the guard holds every channel (`estop-unknown`) until the key is seen up.
    public func levelUnknown() { unknown.store(true, ordering: .releasing) }

    /// Whether the level is unknown since the device opened.
    public var isLevelUnknown: Bool { unknown.load(ordering: .acquiring) }

    /// Input events were lost (SYN_DROPPED): a press among them cannot be ruled out, so the press
    /// count moves (the guard latches). The held level is left as it was: nothing was seen of it.
    public func notePossiblePress() { pressCount.add(1, ordering: .releasing) }

    /// A complete input frame arrived from the e-stop device (a sign of life, keep-alives included).
    public func noteFrame(at arrival: Int64) { lastFrame.store(arrival, ordering: .releasing) }

    /// Arrival of the last release (0: none yet).
    public var releasedAt: Int64 { released.load(ordering: .acquiring) }
    /// Arrival of the last complete frame (0: none yet).
    public var lastFrameAt: Int64 { lastFrame.load(ordering: .acquiring) }

    /// The e-stop device's reader ended (EOF, ENODEV, the FIFO writer gone) or came back.
    public func setDeviceLost(_ isLost: Bool) {
        lost.store(isLost, ordering: .releasing)
    }

    public var isPressed: Bool { held.load(ordering: .acquiring) }
    public var presses: UInt64 { pressCount.load(ordering: .acquiring) }
    public var isDeviceLost: Bool { lost.load(ordering: .acquiring) }
}
