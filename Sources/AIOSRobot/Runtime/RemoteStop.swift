import Actuators
import RTScheduler
import RobotConfig
import SafetyGuard
import Synchronization
import Transports

/// The remote stop and reset over MQTT (`estop.remote`): a stop latches (released only by a reset);
/// a reset asks the guard, which refuses it while a cause persists. Separate sources, so resets
/// cannot crowd out a stop. Retained messages are history the broker replays at every subscribe:
/// a stale "stop" or "reset" must not act at connect. Not authorised yet: anyone who may publish
/// on these topics can stop the robot or ask for a reset (the broker's ACL decides who may).
enum RemoteStop {
    static func register(_ remote: RemoteStopSettings, scheduler: Scheduler, shared: SharedState<Control>,
                         statusCell: LatestValue<RuntimeStatus>, write: @escaping @Sendable (ApprovedCommand) -> Void,
                         counters: RemoteStopCounters) -> InputEndpoint {
        let category = StopCategory(rawValue: remote.category) ?? .zero
        let stop = scheduler.addSource("remote-stop", queue: QueueSpec(capacity: 4, overflow: .dropOldest),
                                       subscription: Subscription(priority: .critical, relativeDeadline: .milliseconds(1))) { event in
            shared.update(statusCell) { c in
                c.status.remoteStops += 1
                c.lastRemoteStopAt = max(c.lastRemoteStopAt, event.release)
                c.guardian.trigger(.remoteStop, category: category, at: event.release, emit: write)
            }
        }
        let reset = scheduler.addSource("remote-reset", queue: QueueSpec(capacity: 4, overflow: .dropOldest),
                                        subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(50))) { event in
            shared.update(statusCell) { c in
                // Stops are dispatched first (critical): a reset that arrived before the latest
                // stop is older than it and must not release it.
                guard event.release > c.lastRemoteStopAt else {
                    c.status.staleResetsIgnored += 1
                    return
                }
                c.noteReset(c.guardian.reset(at: event.release))
            }
        }
        var subscriptions = [(filter: remote.stopTopic, qos: 1)]
        if let resetTopic = remote.resetTopic { subscriptions.append((resetTopic, 1)) }
        let stopTopic = remote.stopTopic, resetTopic = remote.resetTopic
        return .mqtt(.init(subscriptions: subscriptions, handle: { message in
            let isStop = message.topic == stopTopic
            guard isStop || message.topic == resetTopic else { return }
            guard !message.retained else {
                counters.retainedIgnored.add(1, ordering: .relaxed)
                return
            }
            // Any message on the stop topic stops (a stop must never be lost to its wording); a
            // reset must say so.
            guard isStop || word(message.payload, isOneOf: ["reset", "1", "true"]) else {
                counters.unrecognised.add(1, ordering: .relaxed)
                return
            }
            _ = (isStop ? stop : reset).post(.signal(code: 0, value: 0), release: Instant(nanoseconds: message.arrival))
        }))
    }

    static func word(_ payload: [UInt8], isOneOf words: [String]) -> Bool {
        guard payload.count <= 32 else { return false }
        var text = Substring(String(decoding: payload, as: UTF8.self))
        while text.first?.isWhitespace == true { text.removeFirst() }
        while text.last?.isWhitespace == true { text.removeLast() }
        return words.contains(text.lowercased())
    }
}

/// Remote stop/reset messages not acted on: retained ones and resets that do not say `reset`.
public final class RemoteStopCounters: Sendable {
    public let retainedIgnored = Atomic<UInt64>(0)
    public let unrecognised = Atomic<UInt64>(0)
}
