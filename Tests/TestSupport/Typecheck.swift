import Foundation

/// Runs `swiftc -typecheck` on Tests/GateSnippets/<snippet>.swift.txt against this build's
/// modules: how the gate tests prove that code outside a module cannot reach an internal
/// initialiser (a snippet that must fail, for that reason) and that the harness works (one that
/// must compile). Shared by SafetyGuardTests and ActuatorsTests.
public func typecheckSnippet(_ snippet: String) throws -> (status: Int32, output: String) {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let products = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    let source = FileManager.default.temporaryDirectory.appendingPathComponent("gate-\(snippet)-\(getpid()).swift")
    try? FileManager.default.removeItem(at: source)
    try FileManager.default.copyItem(at: root.appendingPathComponent("Tests/GateSnippets/\(snippet).swift.txt"), to: source)
    defer { try? FileManager.default.removeItem(at: source) }
    var arguments = ["swiftc", "-typecheck", "-I", products.appendingPathComponent("Modules").path]
    // C modules that the imported Swift modules depend on: SwiftPM's generated module maps
    // and the module maps shipped in dependencies' include folders.
    let fm = FileManager.default
    for entry in (try? fm.contentsOfDirectory(atPath: products.path)) ?? [] where entry.hasSuffix(".build") {
        let map = products.appendingPathComponent(entry).appendingPathComponent("module.modulemap").path
        if fm.fileExists(atPath: map) { arguments += ["-Xcc", "-fmodule-map-file=\(map)"] }
    }
    for include in ["Sources/CRealtime/include", "Sources/CTransport/include", "Sources/CAllocCounter/include",
                    "Sources/CSerial", "Sources/CMosquitto", "Sources/CEvdev"] {
        arguments += ["-I", root.appendingPathComponent(include).path]
    }
    // System libraries' headers outside the default search path (libevdev's), as SwiftPM finds them.
    for flag in pkgConfigIncludes(["libevdev", "libmosquitto", "libserialport"]) { arguments += ["-Xcc", flag] }
    let checkouts = root.appendingPathComponent(".build/checkouts")
    if let walker = fm.enumerator(atPath: checkouts.path) {
        for case let path as String in walker where path.hasSuffix("include/module.modulemap") {
            arguments += ["-I", checkouts.appendingPathComponent(path).deletingLastPathComponent().path]
        }
    }
    arguments.append(source.path)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

private func pkgConfigIncludes(_ packages: [String]) -> [String] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["pkg-config", "--cflags-only-I"] + packages
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return [] }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self).split(whereSeparator: \.isWhitespace).map(String.init)
}
