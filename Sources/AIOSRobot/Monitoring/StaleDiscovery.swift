import Foundation
import Synchronization
import Telemetry
import Transports

/// Home Assistant discovery configs of this robot's node that the broker still holds retained but
/// the current configuration no longer publishes (a sensor removed, a task renamed): Home
/// Assistant would keep showing their entities, unavailable, for ever. The telemetry connection
/// subscribes to the node's own configs (`<prefix>/+/robotd_<id>/+/config`, never another
/// node's); the broker answers each subscribe — at every connect — with the retained ones, which
/// this collects on the network thread; the monitor thread then clears each with an empty
/// retained payload (`take`). Nothing here touches the control path.
final class StaleDiscovery: Sendable {
    /// How long after a connect the retained configs are left to arrive before the first sweep
    /// (the broker sends them right after its SUBACK; late ones are swept when they come).
    static let settle: Duration = .seconds(1)
    /// At most this many stale topics waiting: more (a broker full of junk under this node) are
    /// counted and left to the next connect's sweep.
    static let capacity = 256

    /// The node's configs, whatever their component and object id.
    let filter: String
    /// What the current configuration publishes: never cleared.
    private let current: Set<String>
    /// This robot's `status` topic: a config is this robot's only if its availability says so
    /// (two robots with one id under different prefixes share the node, not the status topic).
    let statusTopic: String
    private let found = Mutex<Set<String>>([])
    /// Stale topics not kept because `capacity` were waiting.
    let overflow = Atomic<UInt64>(0)

    init(_ discovery: HomeAssistantDiscovery) {
        filter = HomeAssistantDiscovery.nodeFilter(discoveryPrefix: discovery.robot.discoveryPrefix, robotID: discovery.robot.robotID)
        current = Set(discovery.messages.map(\.topic))
        statusTopic = discovery.robot.topics.status
    }

    /// Network thread: whether `message` is one of the node's configs (handled here: a config is
    /// nothing else's business). A retained, non-empty one the configuration does not publish is
    /// kept for the sweep; a live one (robotd's own configs and removals, echoed) is not.
    func note(_ message: MQTTMessage) -> Bool {
        guard MQTTClient.matches(filter: filter, topic: message.topic) else { return false }
        guard message.retained, !message.payload.isEmpty, !current.contains(message.topic) else { return true }
        guard Self.availabilityTopic(message.payload) == statusTopic else { return true }
        let kept = found.withLock { found -> Bool in
            guard found.count < Self.capacity else { return found.contains(message.topic) }
            found.insert(message.topic)
            return true
        }
        if !kept { overflow.add(1, ordering: .relaxed) }
        return true
    }

    /// Monitor thread: the stale topics collected since the last call, sorted.
    func take() -> [String] {
        found.withLock { found in
            guard !found.isEmpty else { return [] }
            defer { found.removeAll(keepingCapacity: true) }
            return found.sorted()
        }
    }

    /// A discovery config's availability topic: `availability_topic`, else the first entry of
    /// `availability` (or their abbreviations `avty_t`, `avty`, `t`); nil if none or not JSON.
    static func availabilityTopic(_ payload: [UInt8]) -> String? {
        guard payload.count <= 65536, let config = try? JSONDecoder().decode(AvailabilityFields.self, from: Data(payload)) else { return nil }
        return config.availabilityTopic ?? config.avtyT ?? (config.availability ?? config.avty)?.first.flatMap { $0.topic ?? $0.t }
    }

    private struct AvailabilityFields: Decodable {
        struct Entry: Decodable {
            var topic: String?
            var t: String?
        }
        var availabilityTopic: String?
        var avtyT: String?
        var availability: [Entry]?
        var avty: [Entry]?
        enum CodingKeys: String, CodingKey {
            case availabilityTopic = "availability_topic", avtyT = "avty_t", availability, avty
        }
    }
}
