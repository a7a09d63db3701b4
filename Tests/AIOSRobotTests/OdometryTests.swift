import Foundation
import Testing
@testable import AIOSRobot

@Suite("Differential-drive odometry from encoder counts")
struct OdometryTests {
    let ticksPerMetre = 2048 / (2 * Double.pi * 0.05)

    @Test func when_both_wheels_count_the_same_expect_a_straight_line_along_the_heading() {
        var odometry = DiffDriveOdometry(x: 1, y: 2, yaw: .pi / 2)
        odometry.update(leftTicks: 100, rightTicks: 100)  // reference only
        #expect(odometry.x == 1 && odometry.y == 2 && odometry.updates == 0)
        let metre = Int32(ticksPerMetre.rounded())
        odometry.update(leftTicks: 100 + metre, rightTicks: 100 + metre)
        #expect(abs(odometry.x - 1) < 1e-9 && abs(odometry.y - 3) < 1e-3)
    }

    @Test func when_the_wheels_turn_oppositely_expect_a_turn_on_the_spot() {
        var odometry = DiffDriveOdometry()
        odometry.update(leftTicks: 0, rightTicks: 0)
        // A quarter turn: each wheel travels (π/2)·track/2.
        let arc = Int32((Double.pi / 2 * 0.15 * ticksPerMetre).rounded())
        odometry.update(leftTicks: -arc, rightTicks: arc)
        #expect(abs(odometry.yaw - .pi / 2) < 1e-3)
        #expect(hypot(odometry.x, odometry.y) < 1e-9)
    }

    @Test func when_the_32_bit_counters_wrap_expect_the_small_true_delta() {
        var odometry = DiffDriveOdometry()
        odometry.update(leftTicks: .max - 10, rightTicks: .max - 10)
        odometry.update(leftTicks: .min + 9, rightTicks: .min + 9)  // +20 ticks each
        #expect(abs(odometry.x - 20 / ticksPerMetre) < 1e-12)
    }
}
