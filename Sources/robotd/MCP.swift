import AIOSRobot
import ArgumentParser
import Foundation
import Glibc
import MCP
import RobotMCP

/// `robotd mcp`: robotd as an MCP server on stdio, a client of a running robot over MQTT — it opens
/// no device. Its tools are the robot's abilities (as the robot publishes them on `abilities`) and
/// `remote_stop`; its resources the robot's telemetry. docs/planner.md, "robotd as an MCP server".
struct MCPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "An MCP server on stdio for a running robot: its abilities as tools, its telemetry as resources.",
        discussion: """
        Speaks the Model Context Protocol on standard input and output (an MCP client starts it: Claude Desktop, an IDE \
        agent) and reaches the robot over MQTT only. Tools: one per ability the robot publishes on <prefix>abilities \
        (their arguments with units and bounds), each call a goal on <prefix>goal/<user> that the robot validates like \
        every plan — the answer says accepted, or why not —, and remote_stop, the robot's remote stop (<prefix>estop). \
        There is no reset tool and no raw channel. Resources (robotd://<robot id>/…): status, state, sensors, \
        deadlines, plan, audit, abilities. Nothing but MCP goes to standard output; what it does is logged on standard \
        error. The user is --user, else --username; the robot acts on its calls only if its configuration has \
        `planner.goals.mqtt: true` with the user in `planner.goals.users`.

        Example:
          # by hand: the MCP server of robot rover-1 (an MCP client starts it like this)
          robotd mcp --robot-id rover-1 --broker broker.lan:1883 \\
            --username agent --password-file /etc/robotd/agent-password
          # in an MCP client's configuration (Claude Desktop: claude_desktop_config.json)
          {"mcpServers": {"rover-1": {"command": "robotd",
            "args": ["mcp", "--robot-id", "rover-1", "--broker", "broker.lan:1883",
                     "--username", "agent", "--password-file", "/etc/robotd/agent-password"]}}}
        """)

    @OptionGroup var sender: GoalSenderOptions

    @Option(help: "How long a tool call waits for the robot's answer, and remote_stop for the latch (s).")
    var timeout: Double = 10

    func validate() throws {
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    func run() throws {
        let connection = sender.connection
        let settings = RobotLink.Settings(prefix: sender.topicPrefix, robotID: sender.robotId, user: sender.userName)
        let link = try RobotLink(options: connection.options(clientName: "robotd-mcp"), settings: settings)
        try link.start()
        defer { link.stop() }
        let server = RobotMCPServer(link: link, settings: .init(answerTimeout: .milliseconds(Int64(timeout * 1000))), log: Self.log)
        let finished = DispatchSemaphore(value: 0)
        let failure = FailureBox()
        let broker = connection.broker
        // The MCP server runs on Swift concurrency; this thread waits for it (stdin closed) or a signal.
        Task.detached {
            await link.settle(timeout: .seconds(3))
            Self.log("robotd mcp: robot \(settings.robotID) under \(settings.prefix) on \(broker): "
                     + (link.isConnected ? "connected, status \(link.status ?? "unknown")" : "not connected (\(link.linkState)); retrying"))
            do {
                try await server.serve(transport: StdioTransport())
            } catch {
                failure.set("\(error)")
            }
            finished.signal()
        }
        let signals = SignalWatch { _ in finished.signal() }
        defer { signals.cancel() }
        finished.wait()
        if let why = failure.get() {
            Self.log("robotd mcp: \(why)")
            throw ExitCode.failure
        }
    }

    /// Standard error, written directly: the stdio transport makes standard output (and with it a
    /// terminal's shared descriptor) non-blocking, and a log line must never stop the server.
    @Sendable static func log(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    private final class FailureBox: @unchecked Sendable {
        // @unchecked: written once by the server's task before the semaphore, read after it.
        private var text: String?
        func set(_ t: String) { text = t }
        func get() -> String? { text }
    }
}
