import RTScheduler
import Synchronization
import Transports

/// MQTT-connected devices turned into events: each route maps a subscription (wildcards allowed)
/// and an optional JSON field path to a scheduler source. Values are posted as `.scalar` with the
/// route's index as key, so a keep-latest-per-key source holds the newest reading per route.
/// Payloads without a number are counted and dropped, never posted.
public final class MQTTSensorInput: Sendable {
    public struct Route: Sendable {
        public var filter: String
        public var fieldPath: String?
        public var qos: Int
        public var source: SourceHandle
        public init(filter: String, fieldPath: String? = nil, qos: Int = 0, source: SourceHandle) {
            self.filter = filter
            self.fieldPath = fieldPath
            self.qos = qos
            self.source = source
        }
    }

    public let routes: [Route]
    public let posted = Atomic<UInt64>(0)
    public let notANumber = Atomic<UInt64>(0)
    public let refused = Atomic<UInt64>(0)
    public let retainedIgnored = Atomic<UInt64>(0)

    public init(routes: [Route]) { self.routes = routes }

    /// Subscribes every route on `client` (renewed by the client after each reconnect).
    public func subscribe(on client: MQTTClient) throws(MQTTError) {
        for route in routes { try client.subscribe(.init(filter: route.filter, qos: route.qos)) }
    }

    /// Call from the client's message callback (its network thread).
    public func handle(_ message: MQTTMessage) {
        // A retained reading is the broker's memory, replayed at every subscribe and stamped now:
        // a dead sensor's last value must not count as fresh. Counted, not used.
        guard !message.retained else {
            retainedIgnored.add(1, ordering: .relaxed)
            return
        }
        let release = Instant(nanoseconds: message.arrival)
        for (index, route) in routes.enumerated() where MQTTClient.matches(filter: route.filter, topic: message.topic) {
            switch MQTTPayload.number(message.payload, fieldPath: route.fieldPath) {
            case .success(let value):
                if route.source.post(.scalar(value), key: UInt32(index), release: release).wasAccepted {
                    posted.add(1, ordering: .relaxed)
                } else {
                    refused.add(1, ordering: .relaxed)
                }
            case .failure:
                notANumber.add(1, ordering: .relaxed)
            }
        }
    }
}
