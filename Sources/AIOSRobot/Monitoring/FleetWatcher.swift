import CRealtime
import Synchronization
import Transports

/// Feeds a `FleetView` from a broker: one MQTT connection subscribed to the selected robots'
/// telemetry topics; the network thread hands each message to the view under a lock, the caller
/// takes copies of the view to render or print.
public final class FleetWatcher: Sendable {
    public let settings: FleetView.Settings
    private let shared: Shared
    private let client: MQTTClient
    private let subscriptionCount: Int

    /// Created here, nonisolated, so that the callbacks handed to libmosquitto's thread never carry
    /// an actor's isolation.
    public nonisolated init(options: MQTTOptions, settings: FleetView.Settings) throws {
        self.settings = settings
        let broker = "\(options.host):\(options.port)"
        let shared = Shared(FleetView(settings: settings, broker: broker, now: Self.seconds(rt_monotonic_ns())))
        self.shared = shared
        let filters = FleetView.subscriptions(settings)
        subscriptionCount = filters.count
        client = try MQTTClient(options: options, onEvent: { event in
            let link: FleetView.Link
            switch event {
            case .connected: link = .connected
            case .disconnected(code: 0): return  // our own clean DISCONNECT at the end
            case .disconnected, .connectRefused, .connectFailed: link = .down(event.reason)
            }
            shared.view.withLock { $0.link = link }
        }, onMessage: { message in
            shared.view.withLock {
                _ = $0.receive(topic: message.topic, payload: message.payload, retained: message.retained, at: Self.seconds(message.arrival))
            }
        })
        for filter in filters { try client.subscribe(.init(filter: filter, qos: 1)) }
    }

    /// The view, shared by the network thread and the caller (a Mutex cannot be captured by itself).
    private final class Shared: Sendable {
        let view: Mutex<FleetView>
        init(_ view: FleetView) { self.view = Mutex(view) }
    }

    static func seconds(_ nanoseconds: Int64) -> Double { Double(nanoseconds) / 1e9 }

    /// Connects in the background (a broker that is down is retried with backoff).
    public func start() throws { try client.start() }

    public func stop() { client.stop() }

    /// The view as of now.
    public func current() -> FleetView {
        let now = Self.seconds(rt_monotonic_ns())
        return shared.view.withLock {
            $0.advance(to: now)
            return $0
        }
    }

    /// The broker acknowledged every subscription: retained messages (each robot's `status` and
    /// `state`) follow at once.
    public var subscribed: Bool {
        client.isConnected && client.counters.subscribed.load(ordering: .relaxed) >= UInt64(subscriptionCount)
    }

    public var everConnected: Bool { client.counters.connects.load(ordering: .relaxed) > 0 }

    /// Subscriptions the broker refused (an ACL that does not let this user read the topics).
    public var refusedSubscriptions: UInt64 { client.counters.subscriptionsRefused.load(ordering: .relaxed) }
}
