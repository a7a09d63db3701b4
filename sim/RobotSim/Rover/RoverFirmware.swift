import Codecs

/// The rover's microcontroller as the host sees it over its serial link: it decodes motor-command
/// frames for channel 0 (left wheel) and 1 (right wheel) in velocity mode (rad/s), stops a wheel
/// whose commands stop coming (its own watchdog, like real motor drivers), de-energises both
/// wheels when the host's heartbeats stop (once it has heard one), and reports what it refused.
/// Everything is counted so that tests can tell a lost command from an ignored one.
public struct RoverFirmwareCounters: Sendable, Equatable, Codable {
    public var commandsApplied = 0
    public var deenergiseCommands = 0
    /// Well-formed frames the firmware would not act on (unknown channel, mode or type, non-finite value).
    public var commandsIgnored = 0
    public var framesRejected = 0
    public var watchdogTrips = 0
    /// Heartbeat frames from the host.
    public var hostHeartbeats = 0
    /// Times the host's heartbeats stopped for longer than the timeout (both wheels de-energised).
    public var heartbeatTrips = 0
    /// Energising commands refused because the host's heartbeats had stopped.
    public var commandsIgnoredNoHeartbeat = 0
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
    /// nil: host heartbeats are not watched.
    let hostHeartbeatTimeout: Int64?
    /// Last host heartbeat; nil until the first, so a host that never sends them is not tripped.
    var lastHostHeartbeat: Int64?
    /// True from a heartbeat trip until the next host heartbeat: energising commands are refused.
    var heartbeatLost = false

    init(commandTimeout: Int64, hostHeartbeatTimeout: Int64? = nil) {
        self.commandTimeout = commandTimeout
        self.hostHeartbeatTimeout = hostHeartbeatTimeout
    }

    private enum Staged { case command(MotorCommandMessage), heartbeat }

    mutating func receive(_ bytes: UnsafeRawBufferPointer, at time: Int64) {
        // The decoder's callback cannot capture `self` mutably while `decoder` is borrowed, so the
        // frames are staged and applied in order after the chunk (at most a few per chunk).
        var staged: [Staged] = []
        var ignored = 0
        decoder.feed(bytes) { view in
            if view.type == Frame.MessageType.heartbeat.rawValue {
                staged.append(.heartbeat)
                return
            }
            guard view.type == Frame.MessageType.motorCommand.rawValue,
                  let message = MotorCommandMessage(payload: view.payload) else {
                ignored += 1
                return
            }
            staged.append(.command(message))
        }
        counters.commandsIgnored += ignored
        counters.framesRejected = decoder.framesRejected
        for frame in staged {
            switch frame {
            case .heartbeat:
                counters.hostHeartbeats += 1
                lastHostHeartbeat = time
                heartbeatLost = false
            case .command(let message):
                // A command after a silence the physics step has not checked yet must not energise.
                checkHostHeartbeat(at: time)
                apply(message, at: time)
            }
        }
    }

    private mutating func apply(_ message: MotorCommandMessage, at time: Int64) {
        guard message.channel <= 1, message.mode == .velocity, message.value.isFinite else {
            counters.commandsIgnored += 1
            return
        }
        if heartbeatLost && !message.deenergize {
            counters.commandsIgnoredNoHeartbeat += 1
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

    /// The host's heartbeats: once heard, silence for longer than `hostHeartbeatTimeout`
    /// de-energises both wheels (a frozen or killed host may still have a last command in force).
    mutating func checkHostHeartbeat(at time: Int64) {
        guard let timeout = hostHeartbeatTimeout, let last = lastHostHeartbeat, !heartbeatLost,
              time - last > timeout else { return }
        heartbeatLost = true
        counters.heartbeatTrips += 1
        drive.left = WheelDrive()
        drive.right = WheelDrive()
    }

    /// The driver's own watchdog: a wheel with no command for `commandTimeout` is de-energised.
    mutating func checkWatchdog(at time: Int64) {
        checkHostHeartbeat(at: time)
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
