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
    /// Each route's command topic on the client, with its safe value rendered once (so that the
    /// supervisor's path builds no string). The client keeps at most one command per topic
    /// outstanding and never refuses the safe value for a full queue (`MQTTClient.publishCommand`).
    private let topics: [MQTTCommandTopic]

    public init(name: String, routes: [Route], client: any MQTTPublishing) {
        self.name = name
        self.routes = routes
        self.client = client
        topics = routes.map { client.commandTopic($0.topic, qos: $0.qos, retain: $0.retain, safePayload: Array($0.render($0.safeValue).utf8)) }
    }

    public var isConnected: Bool { client.isConnected }

    public func write(_ command: ApprovedCommand, token: DeviceWriteToken) throws {
        guard let i = routes.firstIndex(where: { $0.channel == command.channel }) else {
            throw ActuatorError(.unknownChannel, backend: name)
        }
        // A value that renders as the safe value is the safe value (never refused for a full queue).
        let payload = command.deenergize ? topics[i].safePayload : Array(routes[i].render(command.value).utf8)
        // The approval goes along: a command that has to wait for the topic's outstanding message
        // is checked again by the seal's rules (validity, epoch) when its turn comes.
        let approval = token.seal.map { MQTTCommandApproval(validUntil: command.validUntil.nanoseconds, epoch: command.epoch, source: $0) }
        do { try client.publishCommand(payload, on: topics[i], approval: approval) } catch { throw mapped(error) }
    }

    public func applySafeState(token: DeviceWriteToken) throws {
        var firstError: Error?
        for topic in topics {
            do { try client.publishSafeValue(on: topic) } catch { firstError = firstError ?? mapped(error) }
        }
        if let firstError { throw firstError }
    }

    public func applySafeState(channel: ChannelID, token: DeviceWriteToken) throws {
        guard let i = routes.firstIndex(where: { $0.channel == channel }) else { throw ActuatorError(.unknownChannel, backend: name) }
        do { try client.publishSafeValue(on: topics[i]) } catch { throw mapped(error) }
    }

    /// From the supervisor: publishes the safe values (rendered at creation) through the client's
    /// `publishEmergency`, each topic marked first (an atomic) so that a command waiting there is
    /// dropped. This back end holds no lock of its own, and the client never waits for
    /// its count of unconfirmed messages: when the network thread holds that lock (a sweep), the
    /// message goes out and is counted afterwards. What remains are libmosquitto's internal mutexes
    /// (the client runs with `mosquitto_threaded_set`), held by its network thread for queue
    /// operations and non-blocking socket writes, and its copy of each message (an allocation): not
    /// real-time safe, but no wait for the network or for our own locks (the network thread sends).
    public func emergencySafeState(token: DeviceWriteToken) throws {
        var firstError: Error?
        var i = 0
        while i < topics.count {
            do { try client.publishEmergencySafeValue(on: topics[i]) } catch { firstError = firstError ?? mapped(error) }
            i += 1
        }
        if let firstError { throw firstError }
    }

    private func mapped(_ error: any Error) -> any Error {
        if error is ActuatorError { return error }
        // The channel's last command went unconfirmed past the client's limit: the channel was
        // stuck, as a device that takes no bytes (the set fails the back end; the guard stops).
        if let e = error as? MQTTError, e.code == MQTTError.commandUnconfirmedCode {
            return ActuatorError(.stalled, backend: name, detail: "\(error)")
        }
        return ActuatorError(client.isConnected ? .writeFailed : .disconnected, backend: name, detail: "\(error)")
    }
}

/// The actuator set's seal and clock, read on the MQTT client's network thread when a command that
/// waited is handed over: the same rules as `GuardSeal.admit` (the guard's identity was checked
/// when the command was written).
extension SealClock: MQTTApprovalSource {
    func approvalNow() -> Int64 { clock.now().nanoseconds }
    func approvalEpoch() -> UInt64 { seal.epoch }
}
