import Transports

/// Renders raw input events (from libevdev or an input_event stream) as JSON lines with
/// libevdev's names, frame by frame.
public struct InputEcho {
    public let source: String
    public private(set) var events = 0
    public private(set) var dropped = 0

    public init(source: String) { self.source = source }

    public mutating func feed(event: InputEvent, arrival: Int64, emit: (String) -> Void) {
        events += 1
        if event.type == 0 && event.code == 3 { dropped += 1 }
        var j = JSONLine()
        j.add("source", source)
        j.add("arrival_ns", arrival)
        j.add("kind", "input")
        j.add("time_s", Double(event.seconds) + Double(event.microseconds) / 1e6)
        j.add("type", Int(event.type))
        j.add("code", event.codeName)
        j.add("value", Int(event.value))
        emit(j.text)
    }

    public func summary(pendingBytes: Int) -> String {
        var j = JSONLine()
        j.add("source", source)
        j.add("kind", "summary")
        j.add("events", events)
        j.add("syn_dropped", dropped)
        j.add("partial_bytes", pendingBytes)
        return j.text
    }
}
