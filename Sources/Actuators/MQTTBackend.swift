import Foundation
import SafetyGuard
import Transports

/// Actuators reached over MQTT (a smart plug, a heater relay, a fan): each channel has a topic
/// and a payload template. Not real-time safe (it builds a payload string with Foundation), so in
/// the threaded actuator set it runs on its writer thread, never on the dispatch thread;
/// libmosquitto queues the message and its network thread sends it.
public final class MQTTBackend: ActuatorBackend, EmergencyStopping {
    /// `{value}` is replaced by the number (continuous) or the state's name (discrete), `{channel}`
    /// by the channel name. E.g. `{"state":"{value}"}` or `{value}`.
    public struct Route: Sendable, Equatable {
        public var channel: ChannelID
        public var name: String
        public var topic: String
        public var template: String
        /// Names of discrete states by index (0 = off); empty: the index itself.
        public var stateNames: [String]
        public var safeValue: CommandValue
        public var qos: Int
        public var retain: Bool

        public init(channel: ChannelID, name: String, topic: String, template: String = "{value}",
                    stateNames: [String] = [], safeValue: CommandValue, qos: Int = 1, retain: Bool = false) {
            self.channel = channel
            self.name = name
            self.topic = topic
            self.template = template
            self.stateNames = stateNames
            self.safeValue = safeValue
            self.qos = qos
            self.retain = retain
        }

        func render(_ value: CommandValue) -> String {
            let text: String = switch value {
            case .continuous(let v): v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
            case .discrete(let s): s >= 0 && s < stateNames.count ? stateNames[s] : String(s)
            }
            return template.replacingOccurrences(of: "{value}", with: text).replacingOccurrences(of: "{channel}", with: name)
        }
    }

    public let name: String
    public let routes: [Route]
    public var channels: [ChannelID] { routes.map(\.channel) }
    private let client: any MQTTPublishing
    /// Each route's safe value rendered once, so that the supervisor's path builds no string.
    private let safePayloads: [[UInt8]]

    public init(name: String, routes: [Route], client: any MQTTPublishing) {
        self.name = name
        self.routes = routes
        self.client = client
        safePayloads = routes.map { Array($0.render($0.safeValue).utf8) }
    }

    public var isConnected: Bool { client.isConnected }

    public func write(_ command: ApprovedCommand, token: DeviceWriteToken) throws {
        guard let route = routes.first(where: { $0.channel == command.channel }) else {
            throw ActuatorError(.unknownChannel, backend: name)
        }
        try publish(route, command.deenergize ? route.safeValue : command.value)
    }

    public func applySafeState(token: DeviceWriteToken) throws {
        var firstError: Error?
        for route in routes {
            do { try publish(route, route.safeValue) } catch { firstError = firstError ?? error }
        }
        if let firstError { throw firstError }
    }

    public func applySafeState(channel: ChannelID, token: DeviceWriteToken) throws {
        guard let route = routes.first(where: { $0.channel == channel }) else { throw ActuatorError(.unknownChannel, backend: name) }
        try publish(route, route.safeValue)
    }

    /// From the supervisor: publishes the safe values (rendered at creation) through the client's
    /// `publishEmergency`. This back end holds no lock of its own, and the client never waits for
    /// its count of unconfirmed messages: when the network thread holds that lock (a sweep), the
    /// message goes out and is counted afterwards. What remains are libmosquitto's internal mutexes
    /// (the client runs with `mosquitto_threaded_set`), held by its network thread for queue
    /// operations and non-blocking socket writes, and its copy of each message (an allocation): not
    /// real-time safe, but no wait for the network or for our own locks (the network thread sends).
    public func emergencySafeState(token: DeviceWriteToken) throws {
        var firstError: Error?
        var i = 0
        while i < routes.count {
            let route = routes[i]
            do {
                try client.publishEmergency(topic: route.topic, payload: safePayloads[i], qos: route.qos, retain: route.retain)
            } catch {
                firstError = firstError ?? mapped(error)
            }
            i += 1
        }
        if let firstError { throw firstError }
    }

    private func publish(_ route: Route, _ value: CommandValue) throws {
        do {
            try client.publish(topic: route.topic, payload: Array(route.render(value).utf8), qos: route.qos, retain: route.retain)
        } catch {
            throw mapped(error)
        }
    }

    private func mapped(_ error: any Error) -> any Error {
        if error is ActuatorError { return error }
        return ActuatorError(client.isConnected ? .writeFailed : .disconnected, backend: name, detail: "\(error)")
    }
}
