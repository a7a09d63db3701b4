import Codecs

/// The rover's microcontroller as the host sees it over its serial link: it decodes motor-command
/// frames for channel 0 (left wheel) and 1 (right wheel) in velocity mode (rad/s), stops a wheel
/// whose commands stop coming (its own watchdog, like real motor drivers), and reports what it
/// refused. Everything is counted so that tests can tell a lost command from an ignored one.
public struct RoverFirmwareCounters: Sendable, Equatable, Codable {
    public var commandsApplied = 0
    public var deenergiseCommands = 0
    /// Well-formed frames the firmware would not act on (unknown channel, mode or type, non-finite value).
    public var commandsIgnored = 0
    public var framesRejected = 0
    public var watchdogTrips = 0
    /// Bytes that arrived while the link was down (a pulled cable).
    public var bytesLost = 0
    public var framesSent = 0
    public var bytesSent = 0
    /// Simulated instant (ns) of the first command that energised a wheel, for "nothing moved
    /// before…" checks that must not depend on when a test looked.
    public var firstEnergisedAt: Int64?
    public init() {}
}

struct RoverFirmware: ~Copyable {
    var decoder = FrameDecoder()
    var drive = (left: WheelDrive(), right: WheelDrive())
    var lastCommand: (left: Int64?, right: Int64?) = (nil, nil)
    var counters = RoverFirmwareCounters()
    let commandTimeout: Int64

    init(commandTimeout: Int64) { self.commandTimeout = commandTimeout }

    mutating func receive(_ bytes: UnsafeRawBufferPointer, at time: Int64) {
        // The decoder's callback cannot capture `self` mutably while `decoder` is borrowed, so the
        // commands are staged and applied after the chunk (at most a few per chunk).
        var staged: [MotorCommandMessage] = []
        var ignored = 0
        decoder.feed(bytes) { view in
            guard view.type == Frame.MessageType.motorCommand.rawValue,
                  let message = MotorCommandMessage(payload: view.payload) else {
                if view.type != Frame.MessageType.heartbeat.rawValue { ignored += 1 }
                return
            }
            staged.append(message)
        }
        counters.commandsIgnored += ignored
        counters.framesRejected = decoder.framesRejected
        for message in staged { apply(message, at: time) }
    }

    private mutating func apply(_ message: MotorCommandMessage, at time: Int64) {
        guard message.channel <= 1, message.mode == .velocity, message.value.isFinite else {
            counters.commandsIgnored += 1
            return
        }
        let wheel = WheelDrive(speed: Double(message.value), energised: !message.deenergize)
        if message.deenergize {
            counters.deenergiseCommands += 1
        } else {
            counters.commandsApplied += 1
            if counters.firstEnergisedAt == nil { counters.firstEnergisedAt = time }
        }
        if message.channel == 0 {
            drive.left = wheel
            lastCommand.left = time
        } else {
            drive.right = wheel
            lastCommand.right = time
        }
    }

    /// The driver's own watchdog: a wheel with no command for `commandTimeout` is de-energised.
    mutating func checkWatchdog(at time: Int64) {
        if drive.left.energised, let last = lastCommand.left, time - last > commandTimeout {
            drive.left = WheelDrive()
            counters.watchdogTrips += 1
        }
        if drive.right.energised, let last = lastCommand.right, time - last > commandTimeout {
            drive.right = WheelDrive()
            counters.watchdogTrips += 1
        }
    }
}
