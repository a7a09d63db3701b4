import Foundation

/// Polls `condition` every 5 ms until it holds or `seconds` pass; returns whether it held. Tests
/// wait for behaviour this way instead of sleeping a fixed time (generous bounds on a shared VM).
public func waitUntil(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}

/// A fresh directory under the system's temporary folder (the caller removes it).
public func temporaryDirectory(_ prefix: String = "robotd-test") throws -> String {
    let path = NSTemporaryDirectory() + "\(prefix)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
