import RobotConfig

/// A body twist (m/s, rad/s) to wheel speeds (rad/s) and back, for policies that think in twists.
struct DiffDrive: Sendable, Equatable {
    var wheelRadius: Double
    var wheelSeparation: Double

    init(_ odometry: OdometrySettings) {
        wheelRadius = odometry.wheelRadius
        wheelSeparation = odometry.wheelSeparation
    }

    func wheels(linear v: Double, angular w: Double) -> ChannelValues {
        ChannelValues((v - w * wheelSeparation / 2) / wheelRadius, (v + w * wheelSeparation / 2) / wheelRadius)
    }
}
