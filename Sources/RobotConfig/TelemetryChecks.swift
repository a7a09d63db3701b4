extension SemanticChecker {
    /// `mqtt.telemetry`: what the schema's types cannot say about it.
    mutating func checkTelemetry(_ telemetry: Located?) {
        guard let telemetry, telemetry.map != nil else { return }
        if let warn = telemetry["miss_ratio_warn"]?.number, let error = telemetry["miss_ratio_error"], let value = error.number, value < warn {
            diagnostics.error(error.position, "mqtt.telemetry.miss_ratio_error",
                              "\(value) is below miss_ratio_warn (\(warn)): a task would be in error before it warns",
                              allowed: "at least miss_ratio_warn")
        }
    }
}
