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
        /// The rig's MQTT client retries a lost broker with backoff up to this (s).
        public var rigReconnectMaxSeconds: UInt32 = 8
        public var tick: Int64 = 1_000_000
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
        let pty: PtyDevice
        let fifo: FifoWriter?
        var gamepad: SimulatedGamepad
        init(pty: PtyDevice, fifo: FifoWriter?, gamepad: SimulatedGamepad) {
            self.pty = pty
            self.fifo = fifo
            self.gamepad = gamepad
        }
    }
    private let devices: Devices

    public init(options: Options) throws {
        self.options = options
        rover = RoverSimulation(config: options.rover)
        let pty = try PtyDevice(linkPath: options.roverLinkPath)
        roverDevicePath = options.roverLinkPath ?? pty.slavePath
        let fifo = try options.gamepadFIFO.map { try FifoWriter(path: $0) }
        gamepadPath = options.gamepadFIFO
        devices = Devices(pty: pty, fifo: fifo, gamepad: try SimulatedGamepad(script: options.gamepadScript))
        if let broker = options.broker {
            let rig = RigSimulation(config: options.rig)
            self.rig = rig
            let client = try MQTTClient(options: MQTTOptions(host: broker.host, port: broker.port, clientID: "robotd-sim-rig-\(getpid())",
                                                                reconnectMaxSeconds: options.rigReconnectMaxSeconds)) { message in
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
        try worker.start(name: "robotd-sim") { [self] stop in run(origin: origin, stop: stop) }
    }

    public func stop() {
        worker.stop()
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
            // Host → device first, so a command written before this instant acts in this step.
            while case let n = devices.pty.read(into: input), n > 0 {
                rover.receive(UnsafeRawBufferPointer(rebasing: input[0..<n]))
            }
            let attached = devices.pty.hostAttached
            rover.advance(to: elapsed) { bytes, _ in
                let sent = attached ? devices.pty.write(bytes) : 0
                local.roverBytesUnheard += bytes.count - sent
            }
            if let fifo = devices.fifo {
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
                fifo.write(bytes)
                local.gamepadBytesDropped = fifo.bytesDropped
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
}
