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

    /// Codes are libevdev names ("BTN_SOUTH", "ABS_Y"); an unknown one is an error now, not at run time.
    public init(script: [Step]) throws(UnknownCode) {
        var steps: [(at: Int64, events: [InputEvent])] = []
        for step in script.sorted(by: { $0.at < $1.at }) {
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
    }

    public var isFinished: Bool { next == steps.count }

    /// The records of every step due by `time`, timestamped, as one byte string (empty if none).
    public mutating func advance(to time: Int64) -> [UInt8] {
        var bytes: [UInt8] = []
        while next < steps.count, steps[next].at <= time {
            let at = steps[next].at
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
