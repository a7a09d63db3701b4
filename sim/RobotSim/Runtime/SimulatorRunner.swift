import CRealtime
import Foundation
import Platform
import Synchronization
import Transports

/// The simulator in real-time mode: the rover behind a pseudo-terminal, the gamepad behind a FIFO
/// of input_event records, the IoT rig on an MQTT broker, all advanced from CLOCK_MONOTONIC on
/// one thread at `tick` resolution. robotd cannot tell it from hardware except by its paths.
public final class SimulatorRunner: Sendable {
    public struct Options: Sendable {
        public var rover = RoverSimulationConfig()
        /// A stable path for the rover's serial port (a symlink to the pty), e.g. /tmp/robotd-sim/rover.
        public var roverLinkPath: String?
        /// Where the gamepad's input_event stream appears (a FIFO); nil: no gamepad.
        public var gamepadFIFO: String?
        public var gamepadScript: [SimulatedGamepad.Step] = []
        /// The rig runs when a broker is given.
        public var rig = RigSimulationConfig()
        public var broker: (host: String, port: Int)?
        /// The rig's login on `broker` (a broker that wants one) and TLS (a CA file).
        public var brokerUsername: String?
        public var brokerPassword: String?
        public var brokerCAFile: String?
        /// The rig's MQTT client retries a lost broker with backoff up to this (s).
        public var rigReconnectMaxSeconds: UInt32 = 8
        /// The rig's MQTT link events (connected, connection refused, lost…), on its network thread.
        public var onRigLink: (@Sendable (MQTTClient.LinkEvent) -> Void)?
        public var tick: Int64 = 1_000_000
        /// Faults on the runner's time (ns since `start()`): each goes to the part it concerns
        /// (rover, gamepad, rig) and all of them show in the rover's `activeFaults`. serial-unplug
        /// needs `roverLinkPath` (the device comes back there), the gamepad kinds `gamepadFIFO`,
        /// broker-stop `broker`.
        public var faults: [SimulatorFault] = []
        /// SCHED_FIFO priority of the simulator's thread (when permitted): a world that stalls
        /// behind other work on a busy machine looks to robotd like a controller gone silent.
        /// nil: SCHED_OTHER.
        public var fifoPriority: Int?
        public init() {}
    }

    public struct Counters: Sendable, Codable, Equatable {
        /// Rover frames not sent because no host had the port open, or the tty buffer was full.
        public var roverBytesUnheard = 0
        public var gamepadBytesDropped = 0
        public var rigPublishFailures = 0
        public var ticks = 0
        /// Ticks that started more than 5 ms late (the host was busy).
        public var lateTicks = 0
        /// Fault injection: the rover's pty closed (serial-unplug), the gamepad FIFO removed
        /// (gamepad-unplug), the rig's MQTT client stopped (broker-stop); re-creating a device failed.
        public var serialUnplugs = 0
        public var gamepadUnplugs = 0
        public var brokerStops = 0
        public var replugFailures = 0
    }

    public let rover: RoverSimulation
    public let rig: RigSimulation?
    /// The pty slave robotd should open (or `roverLinkPath`, which points to it).
    public let roverDevicePath: String
    public let gamepadPath: String?
    private let options: Options
    private let counters = Mutex(Counters())
    private let worker = WorkerSlot()
    private let mqtt: MQTTClient?
    private let started = Atomic<Int64>(0)

    private final class Devices: @unchecked Sendable {
        // Owned by the runner thread once it starts (the init only creates them).
        /// nil while a serial-unplug fault has the adapter out.
        var pty: PtyDevice?
        let fifo: FifoWriter?
        var gamepad: SimulatedGamepad
        init(pty: PtyDevice, fifo: FifoWriter?, gamepad: SimulatedGamepad) {
            self.pty = pty
            self.fifo = fifo
            self.gamepad = gamepad
        }
    }
    private let devices: Devices
    /// Stops and restarts the rig's MQTT client for broker-stop off the runner thread (a stop joins
    /// libmosquitto's loop, which would stall the rover's frames); serial, so the order holds.
    private let mqttControl = DispatchQueue(label: "robotd-sim-mqtt-control")

    public init(options: Options) throws {
        let kinds = Set(options.faults.map(\.kind))
        if kinds.contains(.serialUnplug) && options.roverLinkPath == nil {
            throw SimulatorError("the serial-unplug fault needs a rover link path: the device comes back there")
        }
        if !kinds.isDisjoint(with: [.gamepadUnplug, .estopHold]) && options.gamepadFIFO == nil {
            throw SimulatorError("the gamepad-unplug and estop-hold faults need the gamepad FIFO")
        }
        if kinds.contains(.brokerStop) && options.broker == nil {
            throw SimulatorError("the broker-stop fault needs the rig (a broker)")
        }
        self.options = options
        var roverConfig = options.rover
        roverConfig.faults += options.faults
        rover = RoverSimulation(config: roverConfig)
        let pty = try PtyDevice(linkPath: options.roverLinkPath)
        roverDevicePath = options.roverLinkPath ?? pty.slavePath
        let fifo = try options.gamepadFIFO.map { try FifoWriter(path: $0) }
        gamepadPath = options.gamepadFIFO
        devices = Devices(pty: pty, fifo: fifo,
                          gamepad: try SimulatedGamepad(script: options.gamepadScript, faults: options.faults))
        if let broker = options.broker {
            var rigConfig = options.rig
            rigConfig.faults += options.faults.filter { $0.kind == .brokerStop }
            let rig = RigSimulation(config: rigConfig)
            self.rig = rig
            let client = try MQTTClient(options: MQTTOptions(host: broker.host, port: broker.port, clientID: "robotd-sim-rig-\(getpid())",
                                                                username: options.brokerUsername, password: options.brokerPassword,
                                                                caFile: options.brokerCAFile, reconnectMaxSeconds: options.rigReconnectMaxSeconds),
                                        onEvent: options.onRigLink ?? { _ in }) { message in
                rig.handle(topic: message.topic, payload: message.payload)
            }
            for topic in rig.commandTopics { try client.subscribe(.init(filter: topic, qos: 1)) }
            mqtt = client
        } else {
            rig = nil
            mqtt = nil
        }
    }

    public func start() throws {
        try mqtt?.start()
        let origin = rt_monotonic_ns()
        started.store(origin, ordering: .relaxed)
        try worker.start(name: "robotd-sim", fifoPriority: options.fifoPriority) { [self] stop in run(origin: origin, stop: stop) }
    }

    public func stop() {
        worker.stop()
        mqttControl.sync {}  // a broker-stop restart queued last must not outlive this stop
        mqtt?.stop()
    }

    public var statistics: Counters { counters.withLock { $0 } }
    public var isRigConnected: Bool { mqtt?.isConnected ?? false }
    /// SUBACKs received: the rig is listening for commands once this reaches 2.
    public var rigSubscriptions: UInt64 { mqtt?.counters.subscribed.load(ordering: .relaxed) ?? 0 }

    private func run(origin: Int64, stop: StopFlag) {
        let input = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        defer { input.deallocate() }
        var next = origin
        var local = Counters()
        var lastGamepadReport: Int64 = -1_000_000_000
        var nextReplugAttempt: Int64 = 0
        var brokerStopped = false
        while !stop.isSet {
            next += options.tick
            rt_sleep_until(next)
            let now = rt_monotonic_ns()
            local.ticks += 1
            if now - next > 5_000_000 {
                local.lateTicks += 1
                next = now  // resume from now: physics catches up in one advance, no burst of ticks
            }
            let elapsed = now - origin
            plugSerial(at: elapsed, counters: &local, nextAttempt: &nextReplugAttempt)
            // Host → device first, so a command written before this instant acts in this step.
            if let pty = devices.pty {
                while case let n = pty.read(into: input), n > 0 {
                    rover.receive(UnsafeRawBufferPointer(rebasing: input[0..<n]))
                }
            }
            let pty = devices.pty
            let attached = pty?.hostAttached ?? false
            rover.advance(to: elapsed) { bytes, _ in
                let sent = attached ? pty?.write(bytes) ?? 0 : 0
                local.roverBytesUnheard += bytes.count - sent
            }
            if let fifo = devices.fifo, devices.gamepad.isUnplugged(at: elapsed) {
                if !fifo.isUnplugged { fifo.unplug(); local.gamepadUnplugs += 1 }
                _ = devices.gamepad.advance(to: elapsed)  // what falls due now is lost
            } else if let fifo = devices.fifo, fifo.isUnplugged, elapsed >= nextReplugAttempt {
                do { try fifo.plug() } catch { local.replugFailures += 1; nextReplugAttempt = elapsed + 100_000_000 }
            } else if let fifo = devices.fifo, !fifo.isUnplugged {
                var bytes = devices.gamepad.advance(to: elapsed)
                // An empty report every 200 ms, as wireless gamepads send: the reader can tell a
                // live device from one whose writer has gone (e-stop device supervision).
                if bytes.isEmpty && elapsed - lastGamepadReport >= 200_000_000 {
                    var report = InputEvent.synReport
                    report.seconds = elapsed / 1_000_000_000
                    report.microseconds = elapsed % 1_000_000_000 / 1000
                    report.write(into: &bytes)
                }
                if !bytes.isEmpty { lastGamepadReport = elapsed }
                // A reader that opens the FIFO first gets the sticks' positions, as robotd reads a
                // real device's at open: it enables nothing on a stick it does not know.
                let gamepad = devices.gamepad
                fifo.write(bytes) { gamepad.stateReport(at: elapsed) }
                local.gamepadBytesDropped = fifo.bytesDropped
            }
            if let mqtt {
                let stopped = options.faults.contains { $0.kind == .brokerStop && $0.isActive(at: elapsed) }
                if stopped != brokerStopped {
                    brokerStopped = stopped
                    if stopped { local.brokerStops += 1 }
                    mqttControl.async { if stopped { mqtt.stop() } else { try? mqtt.start() } }
                }
            }
            if let rig, let mqtt {
                rig.advance(to: elapsed) { topic, payload, retain, _ in
                    do { try mqtt.publish(topic: topic, payload: payload, qos: 0, retain: retain) } catch { local.rigPublishFailures += 1 }
                }
            }
            if local.ticks % 100 == 0 { counters.withLock { [local] in $0 = local } }
        }
        counters.withLock { [local] in $0 = local }
    }

    /// serial-unplug: the adapter's pty goes (robotd's reader sees EOF/EIO, the link path
    /// disappears) and a new one comes back behind the same path, as a replugged USB adapter.
    private func plugSerial(at elapsed: Int64, counters local: inout Counters, nextAttempt: inout Int64) {
        let unplugged = options.faults.contains { $0.kind == .serialUnplug && $0.isActive(at: elapsed) }
        if unplugged, devices.pty != nil {
            devices.pty = nil
            local.serialUnplugs += 1
        } else if !unplugged, devices.pty == nil, elapsed >= nextAttempt {
            do { devices.pty = try PtyDevice(linkPath: options.roverLinkPath) } catch {
                local.replugFailures += 1
                nextAttempt = elapsed + 100_000_000
            }
        }
    }
}
