import Transports

/// A gamepad (or e-stop box) as the kernel would report it: Linux `input_event` records with
/// SYN_REPORT after each change, stamped with the simulated time. A script says what happens
/// when; robotd reads the records through the same decoder it uses after libevdev.
public struct SimulatedGamepad: Sendable {
    public enum Change: Sendable, Equatable {
        case press(String)
        case release(String)
        case axis(String, Int32)
    }

    public struct Step: Sendable, Equatable {
        public var at: Int64
        public var changes: [Change]
        public init(at: Int64, _ changes: [Change]) {
            self.at = at
            self.changes = changes
        }
    }

    public struct UnknownCode: Error, CustomStringConvertible, Equatable {
        public let name: String
        public var description: String { "no evdev code named \(name)" }
    }

    private var steps: [(at: Int64, events: [InputEvent])]
    private var next = 0
    /// Each stick axis's position now (raw, by code): the two sticks' axes at rest (0) until the
    /// script moves them, and any other axis the script names. Moved by steps lost while
    /// unplugged too: the stick moved, only its reports were lost.
    private var axisPositions: [UInt16: Int32] = [:]
    /// The e-stop key's level now (down or up), moved by steps lost while unplugged too: a
    /// latching mushroom pressed while the cable is out is still down when it is back.
    private var estopDown = false
    /// gamepad-unplug windows: what is due inside one is lost, as on an unplugged device.
    private let unplugs: [SimulatorFault]
    /// Steps that fell due while unplugged.
    public private(set) var stepsLost = 0

    /// The e-stop's key on this pad (estop-hold presses it; the examples map it to `estop`).
    public static let estopKey = "BTN_EAST"

    /// Codes are libevdev names ("BTN_SOUTH", "ABS_Y"); an unknown one is an error now, not at run time.
    /// Of `faults`, estop-hold adds BTN_EAST pressed at its start and released at its end (never,
    /// without a duration), and gamepad-unplug drops the steps due while it lasts; other kinds are
    /// not the gamepad's and are ignored.
    public init(script: [Step], faults: [SimulatorFault] = []) throws(UnknownCode) {
        var script = script
        for fault in faults where fault.kind == .estopHold {
            script.append(Step(at: fault.start, [.press(Self.estopKey)]))
            if let duration = fault.duration { script.append(Step(at: fault.start + duration, [.release(Self.estopKey)])) }
        }
        unplugs = faults.filter { $0.kind == .gamepadUnplug }
        var steps: [(at: Int64, events: [InputEvent])] = []
        // Stable: steps at the same instant keep the script's order, the faults' after it.
        for step in script.enumerated().sorted(by: { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }).map(\.element) {
            var events: [InputEvent] = []
            for change in step.changes {
                let (name, value): (String, Int32) = switch change {
                case .press(let n): (n, 1)
                case .release(let n): (n, 0)
                case .axis(let n, let v): (n, v)
                }
                guard let code = InputEvent.code(named: name) else { throw UnknownCode(name: name) }
                events.append(InputEvent(type: code.type, code: code.code, value: value))
            }
            events.append(.synReport)
            steps.append((step.at, events))
        }
        self.steps = steps
        for name in ["ABS_X", "ABS_Y", "ABS_RX", "ABS_RY"] { if let c = InputEvent.code(named: name) { axisPositions[c.code] = 0 } }
        for step in steps { for event in step.events where event.type == 3 { axisPositions[event.code] = 0 } }
    }

    /// What a reader that has just opened the device can know of it: every axis's current
    /// position and the e-stop key's level, then a SYN_REPORT, stamped `time` (a real device's
    /// state is read at open). robotd holds an e-stop's level unknown, and so held, from an
    /// opening until its key reports: a stream says it first, as robotd reads a real device's.
    /// Other keys are not reported: a deadman held since before the opening shows no press edge.
    public func stateReport(at time: Int64) -> [UInt8] {
        var bytes: [UInt8] = []
        for (code, value) in axisPositions.sorted(by: { $0.key < $1.key }) {
            InputEvent(seconds: time / 1_000_000_000, microseconds: time % 1_000_000_000 / 1000, type: 3, code: code, value: value)
                .write(into: &bytes)
        }
        if let key = InputEvent.code(named: Self.estopKey) {
            InputEvent(seconds: time / 1_000_000_000, microseconds: time % 1_000_000_000 / 1000, type: key.type, code: key.code,
                       value: estopDown ? 1 : 0).write(into: &bytes)
        }
        var report = InputEvent.synReport
        report.seconds = time / 1_000_000_000
        report.microseconds = time % 1_000_000_000 / 1000
        report.write(into: &bytes)
        return bytes
    }

    private static let estopCode = InputEvent.code(named: estopKey)?.code

    public var isFinished: Bool { next == steps.count }

    /// Whether a gamepad-unplug fault has the device unplugged at `time`.
    public func isUnplugged(at time: Int64) -> Bool { unplugs.contains { $0.isActive(at: time) } }

    /// The records of every step due by `time`, timestamped, as one byte string (empty if none).
    public mutating func advance(to time: Int64) -> [UInt8] {
        var bytes: [UInt8] = []
        while next < steps.count, steps[next].at <= time {
            let at = steps[next].at
            for event in steps[next].events {
                if event.type == 3 { axisPositions[event.code] = event.value }
                if event.type == 1, event.code == Self.estopCode, event.value != 2 { estopDown = event.value != 0 }
            }
            if isUnplugged(at: at) {
                stepsLost += 1
                next += 1
                continue
            }
            for var event in steps[next].events {
                event.seconds = at / 1_000_000_000
                event.microseconds = at % 1_000_000_000 / 1000
                event.write(into: &bytes)
            }
            next += 1
        }
        return bytes
    }
}
