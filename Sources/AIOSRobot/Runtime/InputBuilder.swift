import Actuators
import RTScheduler
import RobotConfig
import SafetyGuard
import Transports

/// The runtime's side of building inputs: the sources an input kind asks for, with their handlers
/// (which run on the dispatch thread under the control lock). One per runtime; `current` is the
/// input being built.
final class InputBuilder: InputBuildContext {
    let configuration: RobotConfiguration
    let scheduler: Scheduler
    let shared: SharedState<Control>
    let statusCell: LatestValue<RuntimeStatus>
    let write: @Sendable (ApprovedCommand) -> Void
    let sensorNames: [String]
    var current: InputSettings?
    private(set) var gamepads: [(input: String, axes: [String])] = []
    /// Made before any input is built (from `estop.inputs`), so every handler reads all of them.
    let estops: [(input: String, signal: EStopSignal)]
    /// E-stop inputs bound to a device's `estop` key so far.
    private(set) var boundEStops: Set<String> = []
    private(set) var links: [(input: String, link: InputLink)] = []
    /// Per input: its messages' rate and gaps (telemetry), told by every source it posts to.
    private(set) var arrivals: [(input: String, statistics: ArrivalStatistics)] = []

    init(configuration: RobotConfiguration, scheduler: Scheduler, shared: SharedState<Control>,
         statusCell: LatestValue<RuntimeStatus>, write: @escaping @Sendable (ApprovedCommand) -> Void, sensorNames: [String],
         estops: [(input: String, signal: EStopSignal)]) {
        self.configuration = configuration
        self.estops = estops
        self.scheduler = scheduler
        self.shared = shared
        self.statusCell = statusCell
        self.write = write
        self.sensorNames = sensorNames
    }

    private var input: InputSettings {
        get throws(KindError) {
            guard let current else { throw KindError("no input is being built") }
            return current
        }
    }

    func settings(of input: InputSettings) -> SettingsReader { SettingsReader(owner: "input \(input.name)", input.settings) }

    /// The input's queue, priority and deadline (defaults: 8 events, drop the oldest, high, 10 ms).
    private func spec() throws -> (QueueSpec, Subscription) {
        let input = try self.input
        let overflow: OverflowPolicy = switch input.queue?.overflow ?? "drop_oldest" {
        case "reject": .reject
        case "keep_latest_per_key": .keepLatestPerKey
        case "drop_oldest": .dropOldest
        case let other: throw KindError("input \(input.name): queue.overflow must be reject, drop_oldest or keep_latest_per_key, not \(other)")
        }
        let capacity = input.queue?.capacity ?? 8
        guard capacity >= 1 else { throw KindError("input \(input.name): queue.capacity must be at least 1") }
        let priority: PriorityClass = switch input.priority ?? "high" {
        case "critical": .critical
        case "high": .high
        case "normal": .normal
        case "low": .low
        case let other: throw KindError("input \(input.name): priority must be critical, high, normal or low, not \(other)")
        }
        let deadline = input.deadlineMs ?? 10
        guard deadline >= 0, deadline.isFinite else { throw KindError("input \(input.name): deadline_ms must be ≥ 0") }
        return (QueueSpec(capacity: capacity, overflow: overflow), Subscription(priority: priority, relativeDeadline: .milliseconds(deadline)))
    }

    /// The current input's arrival statistics (one per input, whatever its sources).
    private func arrivalStatistics() throws -> ArrivalStatistics {
        let input = try self.input
        if let existing = arrivals.first(where: { $0.input == input.name }) { return existing.statistics }
        // Default: a gap is an interval the guard would call stale for a sensor this input feeds.
        var fed: [String] = []
        switch input.settings["feeds"] {
        case .string(let sensor)?: fed = [sensor]
        case .map(let entries)?: fed = entries.compactMap { if case .string(let s) = $0.value { s } else { nil } }
        default: break
        }
        let gap = configuration.mqtt?.telemetry?.inputGapMs
            ?? configuration.sensors.filter { fed.contains($0.name) }.map(\.maxAgeMs).min()
        let statistics = ArrivalStatistics(gapThreshold: gap.map { .milliseconds($0) })
        arrivals.append((input.name, statistics))
        return statistics
    }

    func sensorSource(_ sensor: String) throws -> SourceHandle {
        let input = try self.input
        guard let index = sensorNames.firstIndex(of: sensor) else {
            throw KindError("input \(input.name): feeds sensor \(sensor), which is not declared under `sensors`")
        }
        let (queue, subscription) = try spec()
        // A range's "no echo" is the sensor's maximum (its valid range's top); without one it is
        // unknown (NaN), never +∞.
        let rangeMaximum = configuration.sensors.first { $0.name == sensor }?.validRange?.last ?? .nan
        let shared = self.shared, statusCell = self.statusCell, write = self.write
        return scheduler.addSource("\(input.name)/\(sensor)", queue: queue, subscription: subscription) { event in
            shared.update(statusCell) { $0.noteSample(index, event.payload, rangeMaximum: rangeMaximum, at: event.release, write: write) }
        }.observed(by: try arrivalStatistics())
    }

    func link(timeout: Duration?) -> InputLink {
        let name = current?.name ?? "?"
        let link = InputLink(name: name, timeout: timeout)
        links.append((name, link))
        return link
    }

    func gamepad(_ mapping: InputMapping) throws -> GamepadInput {
        let input = try self.input
        // Before any slot is registered: a mapping without a slot per axis and key is refused here,
        // whichever kind made it, never found out on input.
        do { try mapping.validate() } catch { throw KindError("input \(input.name): \(error)") }
        let index = gamepads.count
        gamepads.append((input.name, mapping.axes.map(\.name)))
        let estop = estops.first { $0.input == input.name }?.signal
        if estop != nil {
            guard mapping.keys.contains(where: { $0.action == .emergencyStop }) else {
                throw KindError("input \(input.name): listed under estop.inputs but has no key with action `estop`")
            }
            boundEStops.insert(input.name)
        }
        let shared = self.shared, statusCell = self.statusCell, write = self.write, estops = self.estops
        // The code the gamepad posts for its reset key: one rule for both ends (`GamepadInput.signalCode`).
        let resetCode = GamepadInput.signalCode(of: .named("reset"), in: mapping)
        let (queue, subscription) = try spec()
        // The stick positions the policies see are the reader's levels (`GamepadInput.axisLevels`,
        // read in `refreshWorld`): a queue, whatever its priority, may still hold a deflection
        // made in the frame of a deadman press. This source carries the same changes as events:
        // the input's traffic for the scheduler's figures and telemetry's arrival rate.
        let axes = scheduler.addSource("\(input.name)/axes", queue: QueueSpec(capacity: max(queue.capacity, mapping.axes.count), overflow: .keepLatestPerKey),
                                       subscription: Subscription(priority: subscription.priority, relativeDeadline: subscription.relativeDeadline)) { _ in }
        let clock = scheduler.clock
        let buttons = scheduler.addSource("\(input.name)/keys", queue: queue, subscription: subscription) { event in
            guard case .signal(let code, let value) = event.payload else { return }
            shared.update(statusCell) { c in
                guard c.world.gamepads.indices.contains(index) else { return }
                switch code {
                case GamepadInput.SignalCode.deadman:
                    c.world.gamepads[index].deadmanLevel = value == 1 ? .pressed : .released
                    c.world.gamepads[index].deadmanChangedAt = event.release
                case GamepadInput.SignalCode.resync:
                    // Lost events (or the device): the deadman is not held, and not known released,
                    // until its next event (the reader's level, read before each step, says which).
                    if c.world.gamepads[index].deadmanLevel != .unknown {
                        c.world.gamepads[index].deadmanLevel = .unknown
                        c.world.gamepads[index].deadmanChangedAt = event.release
                    }
                case resetCode:
                    // The reset key acts on its release edge (ISO 13849-1 practice); the guard refuses
                    // it while a cause persists, and the channels still need fresh commands after it.
                    // Every level the guard tick reads, read first: one that changed since the last
                    // tick (an e-stop press or device lost, a link gone silent, the broker link, a
                    // failed back end) must refuse this reset, not wait for the next tick.
                    c.refreshLevels(now: clock.now(), write: write)
                    c.noteReset(c.guardian.resetKey(down: value == 1, at: event.release))
                default:
                    break
                }
            }
        }
        var estopSource: SourceHandle?
        if estop != nil {
            // The event only makes the guard look at once; the level and the sticky press count it
            // reads are set by the input thread and read again on every guard tick.
            estopSource = scheduler.addSource("\(input.name)/estop", queue: QueueSpec(capacity: 4, overflow: .reject),
                                              subscription: Subscription(priority: .critical, relativeDeadline: .milliseconds(1))) { event in
                shared.update(statusCell) { _ = $0.observeEStops(estops, at: event.release, write: write) }
            }
        }
        let arrivals = try arrivalStatistics()
        return try GamepadInput(mapping: mapping, sources: .init(axes: axes.observed(by: arrivals), buttons: buttons.observed(by: arrivals),
                                                                 emergencyStop: estopSource?.observed(by: arrivals)), estop: estop)
    }
}
