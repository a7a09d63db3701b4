/// What an event carries. Hot-path cases are plain values that never allocate; `object` is for
/// rare, large payloads (a plan) and costs a reference-count increment when copied.
public enum Payload: Sendable {
    case none
    case scalar(Double)
    /// Up to `SampleValues.capacity` numbers with a tag the producer defines (an IMU sample,
    /// a motor command, …). The scheduler does not interpret them.
    case values(SampleValues)
    /// A discrete change: a key or button code and its new value.
    case signal(code: Int32, value: Int32)
    case object(any AnyObject & Sendable)
}

/// A fixed-size inline vector of doubles: no heap storage, so copying it never allocates.
public struct SampleValues: Sendable, Equatable {
    public static let capacity = 12

    public var tag: UInt32
    public private(set) var count: Int
    private var storage: (Double, Double, Double, Double, Double, Double,
                          Double, Double, Double, Double, Double, Double)

    /// `count` values, all zero.
    public init(tag: UInt32, count: Int) {
        precondition(count >= 0 && count <= Self.capacity, "SampleValues holds at most 12 values")
        self.tag = tag
        self.count = count
        self.storage = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    }

    public init<S: Sequence<Double>>(tag: UInt32, values: S) {
        self.init(tag: tag, count: 0)
        for value in values where count < Self.capacity {
            count += 1
            self[count - 1] = value
        }
    }

    public subscript(index: Int) -> Double {
        get {
            precondition(index >= 0 && index < count, "index out of range")
            return withUnsafeBytes(of: storage) { $0.load(fromByteOffset: index * 8, as: Double.self) }
        }
        set {
            precondition(index >= 0 && index < count, "index out of range")
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: newValue, toByteOffset: index * 8, as: Double.self) }
        }
    }

    public var array: [Double] { (0..<count).map { self[$0] } }

    public static func == (a: SampleValues, b: SampleValues) -> Bool {
        guard a.tag == b.tag, a.count == b.count else { return false }
        for i in 0..<a.count where a[i] != b[i] { return false }
        return true
    }
}
