/// How input codes become robot inputs: axes normalised with deadzone, inversion and scale; keys
/// mapped to actions (e-stop, deadman/enable, mode, or a named action). Codes are named the way
/// libevdev names them (`ABS_X`, `BTN_SOUTH`).
public struct InputMapping: Sendable, Equatable {
    public struct Axis: Sendable, Equatable {
        public var code: String
        public var name: String
        /// Raw range (from the device's absinfo, or configured for streams).
        public var minimum: Int32
        public var maximum: Int32
        /// Fraction of the half-range around the centre that reads as 0.
        public var deadzone: Double
        public var invert: Bool
        public var scale: Double

        public init(code: String, name: String, minimum: Int32 = -32768, maximum: Int32 = 32767,
                    deadzone: Double = 0.05, invert: Bool = false, scale: Double = 1) {
            self.code = code
            self.name = name
            self.minimum = minimum
            self.maximum = maximum
            self.deadzone = deadzone
            self.invert = invert
            self.scale = scale
        }

        /// Raw → [-1, 1] (times scale), with the deadzone removed and the rest rescaled so the
        /// output is continuous at its edge.
        public func normalise(_ raw: Int32) -> Double {
            let centre = (Double(minimum) + Double(maximum)) / 2
            let half = (Double(maximum) - Double(minimum)) / 2
            guard half > 0 else { return 0 }
            var x = max(-1, min(1, (Double(raw) - centre) / half))
            if abs(x) <= deadzone { x = 0 } else { x = (abs(x) - deadzone) / (1 - deadzone) * (x < 0 ? -1 : 1) }
            return (invert ? -x : x) * scale
        }
    }

    public enum Action: Sendable, Hashable, CustomStringConvertible {
        case emergencyStop
        /// Motion is allowed only while held.
        case deadman
        case mode(String)
        case named(String)

        public var description: String {
            switch self {
            case .emergencyStop: "estop"
            case .deadman: "deadman"
            case .mode(let m): "mode:\(m)"
            case .named(let n): n
            }
        }

        public init(_ text: String) {
            switch text {
            case "estop", "e-stop": self = .emergencyStop
            case "deadman", "enable": self = .deadman
            default: self = text.hasPrefix("mode:") ? .mode(String(text.dropFirst(5))) : .named(text)
            }
        }
    }

    public struct Key: Sendable, Equatable {
        public var code: String
        public var action: Action
        public init(code: String, action: Action) {
            self.code = code
            self.action = action
        }
    }

    public var axes: [Axis]
    public var keys: [Key]

    public init(axes: [Axis] = [], keys: [Key] = []) {
        self.axes = axes
        self.keys = keys
    }

    /// Checks every code name against libevdev's tables, and that every axis and key has a slot
    /// of its own: a code mapped twice reaches one entry only (the other never reports — an
    /// `estop` key shadowed by another action on its code would do nothing), an axis name given
    /// twice makes two axes share one level, and an action given to two keys one level or signal
    /// (the release of one of two `estop` or `deadman` keys would read as released while the other
    /// is still held).
    public func validate() throws(InputError) {
        var axisCodes: [UInt16: Int] = [:], axisNames: [String: Int] = [:]
        for (i, axis) in axes.enumerated() {
            guard let found = InputEvent.code(named: axis.code), found.type == 3 else {
                throw InputError("unknown absolute axis code \(axis.code) (use libevdev names such as ABS_X)")
            }
            guard axis.minimum < axis.maximum, (0..<1).contains(axis.deadzone) else {
                throw InputError("axis \(axis.code): minimum must be below maximum and deadzone in 0…1")
            }
            if let first = axisCodes.updateValue(i, forKey: found.code) {
                throw InputError("axes[\(i)]: code \(axis.code) is already axes[\(first)]'s: each code reaches one axis only")
            }
            if let first = axisNames.updateValue(i, forKey: axis.name) {
                throw InputError("axes[\(i)]: name \(axis.name) is already axes[\(first)]'s: each axis needs a name of its own")
            }
        }
        var keyCodes: [UInt16: Int] = [:], actions: [Action: Int] = [:]
        for (i, key) in keys.enumerated() {
            guard let found = InputEvent.code(named: key.code), found.type == 1 else {
                throw InputError("unknown key code \(key.code) (use libevdev names such as BTN_SOUTH)")
            }
            if let first = keyCodes.updateValue(i, forKey: found.code) {
                throw InputError("keys[\(i)]: code \(key.code) is already keys[\(first)]'s (\(keys[first].action)): each code carries one action")
            }
            if let first = actions.updateValue(i, forKey: key.action) {
                throw InputError("keys[\(i)]: action \(key.action) is already keys[\(first)]'s: one key per action on an input")
            }
        }
    }

    /// The slot of an action: its key's index (the one key `validate` allows it). What the gamepad
    /// posts and what the runtime's handlers expect both come from here.
    public func actionSlot(_ action: Action) -> Int? {
        keys.firstIndex { $0.action == action }
    }
}

public struct InputError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// What a frame of input events means for the robot.
public enum InputChange: Sendable, Equatable {
    case axis(name: String, value: Double)
    case key(action: InputMapping.Action, pressed: Bool)
    /// Events were dropped (SYN_DROPPED): state is unknown until the next full frame. Actions
    /// like deadman must be treated as released.
    case resync
}

/// Groups input events into frames (ended by SYN_REPORT) and maps them. The same code serves
/// real devices (events from libevdev) and raw streams (FIFO, file). After SYN_DROPPED it discards
/// events up to and including the next SYN_REPORT, as the kernel documents, and reports `.resync`.
public struct InputFrameAssembler: Sendable {
    let mapping: InputMapping
    private let axisCodes: [UInt16: Int]
    private let keyCodes: [UInt16: Int]
    private var pendingAxes: [Int: Int32] = [:]
    private var pendingKeys: [(Int, Bool)] = []
    private var dropping = false
    public private(set) var frames = 0
    public private(set) var droppedSequences = 0
    public private(set) var unmapped = 0

    public init(mapping: InputMapping) throws(InputError) {
        try mapping.validate()
        self.mapping = mapping
        var axisCodes: [UInt16: Int] = [:]
        for (i, axis) in mapping.axes.enumerated() { if let c = InputEvent.code(named: axis.code) { axisCodes[c.code] = i } }
        var keyCodes: [UInt16: Int] = [:]
        for (i, key) in mapping.keys.enumerated() { if let c = InputEvent.code(named: key.code) { keyCodes[c.code] = i } }
        self.axisCodes = axisCodes
        self.keyCodes = keyCodes
    }

    /// libevdev has already resynchronised a real device: forget the partial frame, report it,
    /// and take the state events that follow as a normal frame.
    public mutating func resynchronised(deliver: (InputChange) -> Void) {
        droppedSequences += 1
        pendingAxes.removeAll(keepingCapacity: true)
        pendingKeys.removeAll(keepingCapacity: true)
        dropping = false
        deliver(.resync)
    }

    /// The stream's writer went away mid-frame: forget what has no SYN_REPORT yet (the device is
    /// reported lost, which stops by itself).
    public mutating func discardPartialFrame() {
        pendingAxes.removeAll(keepingCapacity: true)
        pendingKeys.removeAll(keepingCapacity: true)
        dropping = false
    }

    public mutating func feed(_ event: InputEvent, deliver: (InputChange) -> Void) {
        switch (event.type, event.code) {
        case (0, 3):  // EV_SYN / SYN_DROPPED
            dropping = true
            droppedSequences += 1
            pendingAxes.removeAll(keepingCapacity: true)
            pendingKeys.removeAll(keepingCapacity: true)
            deliver(.resync)
        case (0, 0):  // EV_SYN / SYN_REPORT
            if dropping { dropping = false; return }
            frames += 1
            for (index, raw) in pendingAxes.sorted(by: { $0.key < $1.key }) {
                deliver(.axis(name: mapping.axes[index].name, value: mapping.axes[index].normalise(raw)))
            }
            for (index, pressed) in pendingKeys { deliver(.key(action: mapping.keys[index].action, pressed: pressed)) }
            pendingAxes.removeAll(keepingCapacity: true)
            pendingKeys.removeAll(keepingCapacity: true)
        case _ where dropping:
            return
        case (3, let code):  // EV_ABS
            if let index = axisCodes[code] { pendingAxes[index] = event.value } else { unmapped += 1 }
        case (1, let code):  // EV_KEY: 1 press, 0 release, 2 autorepeat (ignored)
            if let index = keyCodes[code] {
                if event.value != 2 { pendingKeys.append((index, event.value != 0)) }
            } else {
                unmapped += 1
            }
        default:
            unmapped += 1
        }
    }
}
