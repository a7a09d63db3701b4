import Foundation
import Testing
import TestSupport
@testable import RobotSim

/// robotd and the simulator share one codec, so a codec bug would be invisible between them. A peer
/// written from docs/serial-protocol.md alone (Python: COBS by hand, CPython's CRC, struct) reads the
/// simulator's pty and drives its wheels with frames it encodes itself.
@Suite("Simulator against an independent protocol peer", .serialized)
struct IndependentPeerTests {
    static let peer = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/peers/frame_peer.py").path

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "python3 is not installed"))
    func when_an_independent_peer_reads_and_drives_the_rover_expect_clean_frames_at_rate_and_its_commands_obeyed() throws {
        let runner = try SimulatorRunner(options: SimulatorRunner.Options())
        try runner.start()
        defer { runner.stop() }
        // Its output is read as it comes (a pipe read only after the exit could fill and stall it).
        let peer = try Subprocess("/usr/bin/python3", [Self.peer, runner.roverDevicePath, "--seconds", "1.5", "--drive", "10"])
        #expect(peer.wait(seconds: 60) == 0, "\(peer.stderr)")
        let data = Data(peer.stdout.utf8)
        let summary = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(summary["crc_errors"] as? Int == 0 && summary["cobs_errors"] as? Int == 0)
        #expect(summary["bad_lengths"] as? Int == 0 && summary["unknown_types"] as? Int == 0)
        let frames = try #require(summary["frames"] as? [String: Int])
        #expect((frames["imu"] ?? 0) > 200 && (frames["wheel_encoders"] ?? 0) > 50 && (frames["range"] ?? 0) > 20)
        #expect(abs((summary["imu_hz"] as? Double ?? 0) - 200) < 1)  // device timestamps: exact 5 ms steps
        #expect(abs((summary["accel_z_mean"] as? Double ?? 0) - 9.80665) < 0.02)
        // The peer's own motor frames: every one applied, none rejected, and the wheels turned.
        let sent = try #require(summary["commands_sent"] as? Int)
        #expect(waitUntil(seconds: 2) { runner.rover.snapshot().firmware.commandsApplied == sent })
        let s = runner.rover.snapshot()
        #expect(s.firmware.framesRejected == 0 && s.firmware.commandsIgnored == 0)
        #expect((summary["left_ticks_delta"] as? Int ?? 0) > 1000 && s.odometer > 0.3)
    }
}
