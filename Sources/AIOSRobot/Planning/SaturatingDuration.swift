extension Duration {
    /// `seconds` as whole nanoseconds, saturated at what an `Int64` of nanoseconds holds (about
    /// 292 years) and NaN as zero. A configuration object built in code is not checked by `robotd
    /// check`: a value beyond its schema's maximum must not trap (`Int64(1e300)` does).
    static func saturating(seconds: Double) -> Duration {
        .nanoseconds(saturatingNanoseconds(seconds * 1e9))
    }

    static func saturating(milliseconds: Double) -> Duration {
        .nanoseconds(saturatingNanoseconds(milliseconds * 1e6))
    }

    static func saturatingNanoseconds(_ value: Double) -> Int64 {
        if value.isNaN { return 0 }
        // 2^63 is the first Double that Int64 cannot hold (Double(Int64.max) rounds up to it).
        if value >= 9_223_372_036_854_775_808.0 { return .max }
        if value <= -9_223_372_036_854_775_808.0 { return .min }
        return Int64(value)
    }
}
