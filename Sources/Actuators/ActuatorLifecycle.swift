/// ros2_control's hardware states as a value-type state machine: commands are accepted only
/// while active; every way out of active goes through the safe state.
public struct ActuatorLifecycle: Sendable, Equatable {
    public enum State: String, Sendable { case unconfigured, inactive, active, finalized }

    /// What the owner must do for a transition.
    public enum Action: Sendable, Equatable {
        case none
        case applySafeState
        case refuse
    }

    public private(set) var state: State = .unconfigured
    public init() {}
    init(state: State) { self.state = state }

    /// The state as one byte, for the set's atomic lifecycle word.
    var code: UInt8 {
        switch state {
        case .unconfigured: 0
        case .inactive: 1
        case .active: 2
        case .finalized: 3
        }
    }

    init(code: UInt8) {
        state = switch code {
        case 1: .inactive
        case 2: .active
        case 3: .finalized
        default: .unconfigured
        }
    }

    public mutating func configure() -> Action {
        guard state == .unconfigured else { return .refuse }
        state = .inactive
        return .applySafeState
    }

    /// Activation starts from the safe state, so nothing from before resumes by itself.
    public mutating func activate() -> Action {
        guard state == .inactive else { return state == .active ? .none : .refuse }
        state = .active
        return .applySafeState
    }

    public mutating func deactivate() -> Action {
        guard state == .active else { return .none }
        state = .inactive
        return .applySafeState
    }

    /// A write failed or the link dropped: back to inactive, safe state attempted.
    public mutating func fault() -> Action {
        guard state == .active else { return .applySafeState }
        state = .inactive
        return .applySafeState
    }

    public mutating func finalize() -> Action {
        guard state != .finalized else { return .none }
        state = .finalized
        return .applySafeState
    }

    public var acceptsCommands: Bool { state == .active }
}
