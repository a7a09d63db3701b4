// swift-tools-version: 6.1
import PackageDescription

// Warnings are errors in CI (CI=true) and whenever ROBOTD_STRICT is set; locally they stay
// warnings so that work in progress builds. Applied to this package's targets only.
let strict = Context.environment["CI"] == "true" || Context.environment["ROBOTD_STRICT"] != nil
let ownSwiftSettings: [SwiftSetting] = strict ? [.unsafeFlags(["-warnings-as-errors"])] : []

let package = Package(
    name: "robotd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "robotd", targets: ["robotd"]),
        .executable(name: "robotd-sim", targets: ["robotd-sim"]),
        .library(name: "RTScheduler", targets: ["RTScheduler"]),
        .library(name: "SafetyGuard", targets: ["SafetyGuard"]),
        .library(name: "Actuators", targets: ["Actuators"]),
        .library(name: "AIOSRobot", targets: ["AIOSRobot"]),
        .library(name: "RobotSim", targets: ["RobotSim"]),
        .library(name: "RobotConfig", targets: ["RobotConfig"]),
        .library(name: "RunReport", targets: ["RunReport"]),
        .library(name: "Telemetry", targets: ["Telemetry"]),
        .library(name: "EpisodicMemory", targets: ["EpisodicMemory"]),
        // Their types appear in the public signatures of the libraries above.
        .library(name: "Codecs", targets: ["Codecs"]),
        .library(name: "Transports", targets: ["Transports"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        // SQLite for the planner's episodic memory (needs Debian's libsqlite3-dev).
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        // `robotd mcp`: the Model Context Protocol's server on stdio (and its client in the tests).
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", from: "0.12.0"),
        // File descriptors for the MCP SDK's stdio transport over pipes (the MCP tests; the SDK's own dependency).
        .package(url: "https://github.com/apple/swift-system", from: "1.0.0"),
    ],
    targets: [
        // System-library shims: modulemap + header, found through pkg-config. No logic here.
        .systemLibrary(
            name: "CMosquitto", pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev"])]),
        .systemLibrary(
            name: "CSerial", pkgConfig: "libserialport",
            providers: [.apt(["libserialport-dev"])]),
        .systemLibrary(
            name: "CEvdev", pkgConfig: "libevdev",
            providers: [.apt(["libevdev-dev"])]),
        // What Glibc does not import into Swift: futex, CPU affinity, per-thread credentials.
        .target(name: "CRealtime"),
        // pty, termios and ioctl helpers that Swift cannot call directly (variadic or not imported).
        .target(name: "CTransport"),
        // Counts heap allocations (malloc interposer) so "no allocation on the hot path" is measured.
        .target(name: "CAllocCounter"),
        // Counts calls that can block (I/O on blocking descriptors, futex waits, sleeps, contended
        // locks) on opted-in threads; test builds only. Defines read, write, syscall, … itself.
        .target(name: "CBlockingCallCounter", linkerSettings: [.linkedLibrary("dl")]),
        // The benchmarks' C baselines (a pty echo, a three-thread pipeline, a bare futex ping);
        // linked into RobotBenchmarks only.
        .target(name: "CBenchFloors"),

        // Protocol codecs shared by inputs, actuators and the simulator (one home, no copies).
        .target(name: "Codecs"),
        // Operating-system helpers shared by the layers above (threads).
        .target(name: "Platform", dependencies: ["CRealtime"]),
        // Device transports shared by inputs, actuators and the simulator: serial ports (libserialport
        // for real ports, termios for pseudo-terminals), later the MQTT client and the evdev reader.
        .target(
            name: "Transports",
            dependencies: ["CSerial", "CEvdev", "CMosquitto", "CTransport", "CRealtime", "Codecs", "Platform"]),
        // The robot's YAML configuration: its model, the validator working on Yams' node tree (every
        // problem with line and column), the kinds' field specs. Knows nothing of the runtime.
        .target(
            name: "RobotConfig",
            dependencies: [.product(name: "Yams", package: "Yams")]),
        // Planning beside control: the world state, the plan schema generated from the abilities,
        // plan validation and the built-in planner. Pure logic: no network, no thread (PlannerBackends
        // only for the JSON tree they share).
        .target(name: "Planner", dependencies: ["RobotConfig", "SafetyGuard", "PlannerBackends"]),
        .target(
            name: "RTScheduler",
            dependencies: [
                "CRealtime", "Platform",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]),
        .target(
            name: "SafetyGuard",
            dependencies: ["RTScheduler"]),
        // The bundled simulator (sim/): a rover and an IoT rig speaking the real interfaces. It sees
        // only codecs and transports, never the runtime, so it stays an outside peer.
        .target(
            name: "RobotSim",
            dependencies: ["Codecs", "Transports", "CTransport", "CRealtime", "Platform"],
            path: "sim/RobotSim"),
        // A run recorded from the simulator's ground truth, its SVG picture and scenario criteria:
        // value types only, no runtime and no simulator, so that the daemon and tests share it.
        .target(name: "RunReport"),
        .target(
            name: "Actuators",
            dependencies: [
                "SafetyGuard", "RTScheduler", "Codecs", "CRealtime", "Platform", "Transports",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Telemetry's payloads (one Codable type per topic), diagnostic levels, rate limits and topic
        // names: pure value types built from the scheduler's accounting and the guard's audit; no
        // thread, no I/O (the monitor that publishes them lives in AIOSRobot).
        .target(name: "Telemetry", dependencies: ["RTScheduler", "SafetyGuard"]),
        // The planner's back ends: an OpenAI-compatible chat-completions client (deadline, size cap,
        // response-format dialects) and the model router (per-back-end deadlines, circuit breakers,
        // fallback, rejection feedback). Foundation only: it knows nothing of the runtime.
        .target(name: "PlannerBackends"),
        // The planner's episodic memory: goals, plans, verdicts, outcomes and safety interventions
        // in SQLite (GRDB, WAL), written on a queue of its own, summarised for the prompt.
        .target(
            name: "EpisodicMemory",
            dependencies: ["RobotConfig", .product(name: "GRDB", package: "GRDB.swift")]),
        // The simulator as an actuator back end (lockstep runs, `robotd sim`): a bridge, so that the
        // production actuator library never links the simulator.
        .target(
            name: "SimulatorBridge",
            dependencies: ["Actuators", "RobotSim", "SafetyGuard", "Codecs", "Transports"]),
        .target(
            name: "AIOSRobot",
            dependencies: [
                "RTScheduler", "SafetyGuard", "Actuators", "Transports", "Codecs", "RobotConfig", "Telemetry", "Planner", "PlannerBackends",
                "EpisodicMemory",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // robotd as an MCP server (`robotd mcp`): a client of a running robot over MQTT, its abilities
        // as tools and its telemetry as resources. Opens no device.
        .target(
            name: "RobotMCP",
            dependencies: ["AIOSRobot", "Planner", "RobotConfig", "Telemetry", "Transports", .product(name: "MCP", package: "swift-sdk")]),
        .target(
            name: "RobotBenchmarks",
            dependencies: [
                "RTScheduler", "SafetyGuard", "CAllocCounter", "Platform", "CRealtime", "CTransport", "CBenchFloors",
                "Codecs", "Transports", "Actuators", "AIOSRobot", "RobotConfig",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // What both command-line tools share: the simulated world's options, output lines, signals.
        .target(
            name: "RobotdCommandLine",
            dependencies: [
                "AIOSRobot", "RobotSim", "Platform", "CRealtime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "robotd",
            dependencies: [
                "AIOSRobot", "RobotBenchmarks", "RTScheduler", "Transports", "Platform", "RobotSim", "Actuators", "SimulatorBridge",
                "SafetyGuard", "CRealtime", "RobotConfig", "RunReport", "RobotdCommandLine", "EpisodicMemory", "Telemetry", "RobotMCP",
                .product(name: "MCP", package: "swift-sdk"), .product(name: "Yams", package: "Yams"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The simulator as its own program: a rover on a pty and a gamepad FIFO, or the IoT rig on MQTT.
        .executableTarget(
            name: "robotd-sim",
            dependencies: [
                "RobotdCommandLine", "RobotSim", "Transports", "AIOSRobot", "Platform",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // Helpers shared by the test targets (waiting for a condition, temporary folders).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "RTSchedulerTests", dependencies: ["RTScheduler", "CAllocCounter", "CRealtime", "Platform"]),
        .testTarget(name: "SafetyGuardTests", dependencies: ["TestSupport", "SafetyGuard", "RTScheduler", "CAllocCounter"]),
        .testTarget(name: "ActuatorsTests", dependencies: ["TestSupport", "Actuators", "SafetyGuard", "RTScheduler", "Codecs", "Transports", "RobotSim", "SimulatorBridge", "CAllocCounter", "CBlockingCallCounter", "CTransport"]),
        .testTarget(name: "CodecsTests", dependencies: ["Codecs"]),
        .testTarget(name: "TransportsTests", dependencies: ["TestSupport", "Transports", "Codecs", "CTransport", "Platform", "CAllocCounter"]),
        .testTarget(name: "AIOSRobotTests", dependencies: ["TestSupport", "AIOSRobot", "RobotConfig", .product(name: "Yams", package: "Yams"), "Transports", "Codecs", "CTransport", "RTScheduler", "SafetyGuard", "Actuators", "RobotSim", "SimulatorBridge", "CAllocCounter", "CBlockingCallCounter", "Telemetry",
                                                         "Planner", "PlannerBackends", "EpisodicMemory", .product(name: "Histogram", package: "hdrhistogram-swift"),
                                                         "RobotMCP", .product(name: "MCP", package: "swift-sdk"),
                                                         .product(name: "SystemPackage", package: "swift-system")]),
        .testTarget(name: "RobotBenchmarksTests", dependencies: ["RobotBenchmarks"], resources: [.copy("Fixtures")]),
        .testTarget(name: "PlatformTests", dependencies: ["CBlockingCallCounter", "CRealtime", "Platform"]),
        .testTarget(name: "RobotConfigTests", dependencies: ["TestSupport", "RobotConfig", "AIOSRobot"]),
        .testTarget(name: "RunReportTests", dependencies: ["RunReport"]),
        .testTarget(name: "PlannerTests", dependencies: ["Planner", "RobotConfig", "AIOSRobot"]),
        // The real-model test (RealModelTests) runs the whole path: abilities, schema, router, validator.
        .testTarget(name: "PlannerBackendsTests", dependencies: ["TestSupport", "PlannerBackends", "Planner", "RobotConfig", "AIOSRobot"]),
        .testTarget(name: "EpisodicMemoryTests", dependencies: [
            "TestSupport", "EpisodicMemory", "RobotConfig", .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        .testTarget(name: "TelemetryTests", dependencies: ["Telemetry", "RTScheduler", "SafetyGuard"]),
        .testTarget(name: "RobotSimTests", dependencies: ["TestSupport", "RobotSim", "Codecs", "Transports", "CTransport"]),
    ],
    swiftLanguageModes: [.v6]
)

for target in package.targets where target.type != .system && !target.name.hasPrefix("C") {
    target.swiftSettings = (target.swiftSettings ?? []) + ownSwiftSettings
}
