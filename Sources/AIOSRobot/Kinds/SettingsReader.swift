import RobotConfig

/// Reads a kind's own keys (already checked against its `KindSpec` by the validator). A missing or
/// mistyped key still gets a clear error here, never a crash: the runtime can be built from a
/// configuration that did not go through `robotd check` (tests, code).
public struct SettingsReader: Sendable {
    public let owner: String
    public let value: ConfigValue

    public init(owner: String, _ value: ConfigValue) {
        self.owner = owner
        self.value = value
    }

    public func has(_ key: String) -> Bool { value[key] != nil }

    public func number(_ key: String) throws(KindError) -> Double {
        guard let v = value[key] else { throw KindError("\(owner): `\(key)` is required") }
        guard case .number(let d) = v, d.isFinite else { throw KindError("\(owner): `\(key)` must be a finite number") }
        return d
    }

    public func number(_ key: String, default fallback: Double) throws(KindError) -> Double {
        has(key) ? try number(key) : fallback
    }

    public func optionalNumber(_ key: String) throws(KindError) -> Double? {
        has(key) ? try number(key) : nil
    }

    public func integer(_ key: String, default fallback: Int) throws(KindError) -> Int {
        guard has(key) else { return fallback }
        let d = try number(key)
        guard let i = Int(exactly: d) else { throw KindError("\(owner): `\(key)` must be a whole number") }
        return i
    }

    public func bool(_ key: String, default fallback: Bool) throws(KindError) -> Bool {
        guard let v = value[key] else { return fallback }
        guard case .bool(let b) = v else { throw KindError("\(owner): `\(key)` must be true or false") }
        return b
    }

    public func string(_ key: String) throws(KindError) -> String {
        guard let v = value[key] else { throw KindError("\(owner): `\(key)` is required") }
        guard case .string(let s) = v else { throw KindError("\(owner): `\(key)` must be a string") }
        return s
    }

    public func string(_ key: String, default fallback: String) throws(KindError) -> String {
        has(key) ? try string(key) : fallback
    }

    public func optionalString(_ key: String) throws(KindError) -> String? {
        has(key) ? try string(key) : nil
    }

    public func list(_ key: String) throws(KindError) -> [ConfigValue] {
        guard let v = value[key] else { return [] }
        guard case .list(let items) = v else { throw KindError("\(owner): `\(key)` must be a list") }
        return items
    }

    /// A map whose keys are names (`feeds`, an actuator's `channels`), in file order.
    public func entries(_ key: String) throws(KindError) -> [ConfigValue.Entry] {
        guard let v = value[key] else { return [] }
        guard case .map(let entries) = v else { throw KindError("\(owner): `\(key)` must be a map") }
        return entries
    }

    /// `[[x, y], …]`.
    public func points(_ key: String) throws(KindError) -> [(x: Double, y: Double)] {
        try list(key).enumerated().map { (i, item) throws(KindError) in
            guard case .list(let xy) = item, xy.count == 2, case .number(let x) = xy[0], case .number(let y) = xy[1],
                  x.isFinite, y.isFinite else {
                throw KindError("\(owner): `\(key)[\(i)]` must be [x, y] in metres")
            }
            return (x, y)
        }
    }

    public func nested(_ key: String, _ item: ConfigValue) -> SettingsReader { SettingsReader(owner: "\(owner).\(key)", item) }
}

/// A kind could not be built from its settings (names the owner and the key).
public struct KindError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
