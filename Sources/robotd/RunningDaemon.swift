import AIOSRobot
import Actuators
import Foundation
import RTScheduler
import SafetyGuard
import Synchronization

/// A started daemon as `robotd run` and `robotd sim` hold it: what was applied said in words,
/// SIGINT/SIGTERM turned into the safe state and a request to stop, the audit gathered for the
/// summary.
final class RunningDaemon {
    let daemon: RobotDaemon
    let begin = Date()
    private(set) var history: SafetyHistory
    var lastPublications: UInt64
    private let signal = SignalFlag()
    private let stopped: SafeStopOnSignals

    init(_ daemon: RobotDaemon) throws {
        self.daemon = daemon
        let report = try daemon.start()
        stderrLine("robot \(daemon.configuration.robot.id)")
        stderrLine("dispatch thread: \(report.description)")
        if daemon.configuration.safety.startLatched { stderrLine("started latched (power-on): nothing moves until a reset") }
        let signal = self.signal
        stopped = SafeStopOnSignals(actuators: daemon.actuators) { number in
            stderrLine("signal \(number): actuators in safe state")
            signal.value.store(number, ordering: .relaxed)
        }
        history = SafetyHistory(origin: daemon.scheduler.origin, sensorNames: daemon.runtime.sensorNames)
        lastPublications = daemon.runtime.statusPublications
    }

    var signalled: Bool { signal.value.load(ordering: .relaxed) != 0 }
    var elapsed: Double { Date().timeIntervalSince(begin) }

    /// The guard's audit since the last call, noted for the summary.
    func drainAudit() -> [AuditRecord] {
        let records = daemon.runtime.audit.drain()
        history.note(records)
        return records
    }

    /// Safe state first, then everything stops; the signal handlers go back to their defaults.
    func stop() {
        daemon.stop(reason: signalled ? "signal" : "run finished")
        stopped.cancel()
    }
}

private final class SignalFlag: Sendable {
    let value = Atomic<Int32>(0)
}
