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

    public init(name: String, routes: [Route], client: any MQTTPublishing) {
        self.name = name
        self.routes = routes
        self.client = client
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

    /// From the supervisor: publishes the safe values straight through the client. This back end
    /// holds no lock of its own; the client's publish takes only libmosquitto's internal locks (the
    /// client runs with `mosquitto_threaded_set`) and its own count of unconfirmed messages (held
    /// for a few operations), which the dispatch thread never takes now that publishing happens on
    /// the writer thread. It allocates (payload strings): not real-time safe,
    /// but it does not wait for the network (the network thread sends).
    public func emergencySafeState(token: DeviceWriteToken) throws { try applySafeState(token: token) }

    private func publish(_ route: Route, _ value: CommandValue) throws {
        do {
            try client.publish(topic: route.topic, payload: Array(route.render(value).utf8), qos: route.qos, retain: route.retain)
        } catch let error as ActuatorError {
            throw error
        } catch {
            throw ActuatorError(client.isConnected ? .writeFailed : .disconnected, backend: name, detail: "\(error)")
        }
    }
}
