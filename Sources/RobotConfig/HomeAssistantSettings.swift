/// `mqtt.home_assistant`: Home Assistant MQTT discovery (docs/mqtt.md, "Home Assistant"). `true`
/// is the defaults; a map sets the discovery prefix; `false` or absent: off.
public struct HomeAssistantSettings: Sendable, Equatable, Codable {
    /// Home Assistant's `discovery_prefix` (its MQTT integration's setting), without a trailing `/`.
    public var discoveryPrefix: String = "homeassistant"

    public init() {}

    enum CodingKeys: String, CodingKey {
        case discoveryPrefix = "discovery_prefix"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        discoveryPrefix = try c.decodeIfPresent(String.self, forKey: .discoveryPrefix) ?? HomeAssistantSettings().discoveryPrefix
    }

    /// `true`, `false` or a map, as `mqtt.home_assistant` holds it: nil when off.
    static func decode(from c: KeyedDecodingContainer<MQTTSettings.CodingKeys>, forKey key: MQTTSettings.CodingKeys) throws
        -> HomeAssistantSettings? {
        if let on = try? c.decodeIfPresent(Bool.self, forKey: key) { return on ? HomeAssistantSettings() : nil }
        return try c.decodeIfPresent(HomeAssistantSettings.self, forKey: key)
    }
}

extension ConfigurationSchema {
    /// `mqtt.home_assistant` as a map.
    public static let homeAssistant: [FieldSpec] = [
        FieldSpec("discovery_prefix", .string, help: "Home Assistant's discovery prefix, without `/` at the end (default `homeassistant`)"),
    ]
}

extension SemanticChecker {
    /// `mqtt.home_assistant`: a usable discovery prefix, and the telemetry its entities read.
    mutating func checkHomeAssistant(_ node: Located?, telemetry: Located?) {
        guard let node, node.bool != false else { return }
        if let prefix = node["discovery_prefix"], let text = prefix.string {
            if text.contains("+") || text.contains("#") {
                diagnostics.error(prefix.position, "mqtt.home_assistant.discovery_prefix",
                                  "`\(text)` has an MQTT wildcard: discovery configs are published, not subscribed",
                                  allowed: "a topic without + or #, e.g. homeassistant")
            } else if text.isEmpty || text.hasPrefix("/") || text.hasSuffix("/") || text.contains("//") {
                diagnostics.error(prefix.position, "mqtt.home_assistant.discovery_prefix",
                                  "`\(text)` must not be empty, start or end with `/`, or have an empty level",
                                  allowed: "e.g. homeassistant")
            }
        }
        if let enabled = telemetry?["enabled"], enabled.bool == false {
            diagnostics.error(enabled.position, "mqtt.telemetry.enabled",
                              "telemetry is off, but mqtt.home_assistant is on: its entities read the telemetry topics",
                              allowed: "telemetry enabled, or home_assistant: false")
        }
    }
}
