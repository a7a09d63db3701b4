import Actuators
import Glibc
import CRealtime
import Logging
import RTScheduler
import SafetyGuard
import Synchronization
import Transports

/// The rover runtime on real devices and real time: the rover's serial port (frames in, motor
/// commands out), an input device for the e-stop and reset keys, the control path of
/// `RoverRuntime` on the real-time dispatch thread, and the safe state on SIGINT/SIGTERM. It does
/// not know whether the far ends are hardware or the bundled simulator.
public final class RoverDaemon: Sendable {
    public struct Options: Sendable {
        public var roverPort: SerialEndpoint
        public var serial = SerialSettings()
        /// /dev/input/eventN (libevdev) or a FIFO / file of input_event records; nil: none.
        public var gamepad: String?
        public var realtime = RealtimeOptions()
        /// SCHED_FIFO priorities of the input readers; nil: derived from the dispatch thread's
        /// (e-stop reader 2 below it, the rover's serial reader 3 below), none without it.
        public var estopReaderPriority: Int?
        public var sensorReaderPriority: Int?
        public var runtime = RoverRuntime.Configuration()
        public init(roverPort: SerialEndpoint) { self.roverPort = roverPort }
    }

    public let scheduler: Scheduler
    public let runtime: RoverRuntime
    public let actuators: ActuatorSet
    private let options: Options
    private let reader: Mutex<SerialReader?>
    private let inputs: Mutex<InputDeviceReader?>
    private let log: @Sendable (String) -> Void
    private let motorLink: SerialPortWriter

    /// Opens the motor side of the rover port now (a missing device is an error at start-up, not a
    /// silent retry loop); the sensor side reconnects on its own thread once started, and when it
    /// does, the motor side is reopened and reactivated — in its safe state: the guard latched
    /// `connection-lost` when the link went, so the wheels move again only after a reset.
    public init(options: Options, log: @escaping @Sendable (String) -> Void) throws {
        self.options = options
        self.log = log
        scheduler = Scheduler(clock: MonotonicClock(), logger: Logger(label: "robotd.scheduler"))
        let link = try SerialPortWriter(endpoint: options.roverPort, settings: options.serial)
        motorLink = link
        let motors = SerialFrameBackend(name: "rover-motors", mappings: [
            .init(channel: ChannelID(index: 0), motor: 0, mode: .velocity),
            .init(channel: ChannelID(index: 1), motor: 1, mode: .velocity),
        ], writer: link)
        // Weak: the runtime owns the actuator set, whose fault handler must not own the runtime back.
        let report = Mutex(WeakRuntime())
        // Threaded: device writes run on the back end's writer thread, SCHED_FIFO just below the
        // dispatch thread; faults are reported (and logged) there, never on the dispatch thread.
        let writers = ActuatorSet.WriterOptions(fifoPriority: options.realtime.fifoPriority.map { max(1, $0 - 1) })
        let clock = scheduler.clock
        var configuration = options.runtime
        // An e-stop device behind a stream (a FIFO) has no unplug event: it must show keep-alive
        // frames; an evdev device reports its own removal (ENODEV).
        if let gamepad = options.gamepad, configuration.estopLiveness == nil, !Self.isCharacterDevice(gamepad) {
            configuration.estopLiveness = .seconds(1)
        }
        let runtime = try RoverRuntime(configuration: configuration, scheduler: scheduler) { seal in
            try ActuatorSet(seal: seal, backends: [motors], clock: clock, mode: .threaded(writers)) { fault in
                log("actuator fault: \(fault.error) (safe state \(fault.safeStateApplied ? "applied" : "not applied"))")
                // The back end is inactive now: a level until it is reactivated (a reset is refused meanwhile).
                _ = report.withLock { $0.runtime?.reportActuatorFault(lostLink: fault.error.code == .disconnected || fault.error.code == .stalled,
                                                              at: Instant(nanoseconds: rt_monotonic_ns())) }
            }
        }
        actuators = runtime.actuators
        report.withLock { $0.runtime = runtime }
        self.runtime = runtime
        reader = Mutex(nil)
        inputs = Mutex(nil)
    }

    static func isCharacterDevice(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFCHR
    }

    /// Actuators to their safe state and active, the dispatch thread up, then the readers.
    @discardableResult
    public func start() throws -> RealtimeReport {
        actuators.start()
        let report = try scheduler.start(realtime: options.realtime)
        let runtime = self.runtime
        let log = self.log
        let link = motorLink
        let connections = ConnectionCount()
        // Input readers run SCHED_FIFO below the dispatch thread (and its writers): the e-stop's
        // reader highest of them, then the rover's sensors.
        let dispatch = options.realtime.fifoPriority
        let sensorPriority = options.sensorReaderPriority ?? dispatch.map { max(1, $0 - 3) }
        let estopPriority = options.estopReaderPriority ?? dispatch.map { max(1, $0 - 2) }
        let sensor = try SerialReader(endpoint: options.roverPort, settings: options.serial, fifoPriority: sensorPriority, onEvent: { event in
            switch event {
            case .connected(let path, let backend):
                log("rover port \(path) open (\(backend))")
                // The first connection is the one the motor side opened with; after any later one
                // the motor side's descriptor is stale even if no write has failed on it yet.
                guard connections.value.add(1, ordering: .relaxed).newValue > 1 else { break }
                do {
                    try link.reconnect()
                    runtime.setLink(up: true, at: Instant(nanoseconds: rt_monotonic_ns()))
                    runtime.requestReactivation(of: "rover-motors", at: Instant(nanoseconds: rt_monotonic_ns()))
                    log("motor link reopened; reactivation in the safe state requested")
                } catch {
                    log("motor link: \(error)")
                }
            case .disconnected(let path, let reason):
                log("rover port \(path) lost: \(reason)")
                runtime.setLink(up: false, at: Instant(nanoseconds: rt_monotonic_ns()))
            case .openFailed(let name, let reason, let retry): log("cannot open \(name): \(reason); retrying in \(retry) ms")
            }
        }) { bytes, arrival in runtime.sensors.feed(bytes, arrival: arrival) }
        reader.withLock { $0 = sensor }
        if let path = options.gamepad {
            let device = try InputDeviceReader(path: path, fifoPriority: estopPriority, onNotice: { notice, arrival in
                log("input \(path): \(runtime.handle(notice, arrival: arrival))")
            }) { event, arrival in runtime.gamepad.feed(event: event, arrival: arrival) }
            inputs.withLock { $0 = device }
            if estopPriority != nil && !device.runsAtFIFO { log("warning: the e-stop reader runs without SCHED_FIFO (not permitted)") }
        }
        if sensorPriority != nil && !sensor.runsAtFIFO { log("warning: the rover's serial reader runs without SCHED_FIFO (not permitted)") }
        return report
    }

    /// For a supervisor (watchdog) thread: every actuator to its safe state without any lock the
    /// dispatch thread or a writer may hold (see `ActuatorSet.emergencySafeState`).
    @discardableResult
    public func emergencySafeState() -> Bool { actuators.emergencySafeState() }

    /// Safe state first, then everything else stops.
    public func stop(reason: String) {
        actuators.safeStop(reason: reason)
        reader.withLock { $0?.stop(); $0 = nil }
        inputs.withLock { $0?.stop(); $0 = nil }
        scheduler.stop()
        motorLink.close()
    }
}

private final class ConnectionCount: Sendable {
    let value = Atomic<Int>(0)
}

private struct WeakRuntime: Sendable {
    weak var runtime: RoverRuntime?
}
