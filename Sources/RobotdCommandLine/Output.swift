import AIOSRobot
import Foundation
import RobotSim

/// One line to standard output, unbuffered (status lines are read live by pipes and tests).
public func stdoutLine(_ text: String) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }

/// One line to standard error, unbuffered: what the person at the terminal reads.
public func stderrLine(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }

/// The rover's ground truth as a JSON object (`robotd sim` status lines, `robotd-sim`).
public func roverJSON(_ s: RoverSnapshot) -> String {
    var j = JSONLine()
    j.add("time_s", Double(s.time) / 1e9)
    j.add("x", s.pose.x)
    j.add("y", s.pose.y)
    j.add("yaw", s.pose.yaw)
    j.add("speed_mps", s.linearVelocity)
    j.add("yaw_rate", s.angularVelocity)
    j.add("energised", s.leftEnergised || s.rightEnergised)
    j.add("odometer_m", s.odometer)
    j.add("collisions", s.collisions)
    j.add("commands", s.firmware.commandsApplied)
    j.add("deenergise_commands", s.firmware.deenergiseCommands)
    j.add("ignored", s.firmware.commandsIgnored)
    j.add("rejected_frames", s.firmware.framesRejected)
    j.add("firmware_watchdog_trips", s.firmware.watchdogTrips)
    j.add("link_up", s.linkUp)
    j.addRaw("active_faults", json: jsonStrings(s.activeFaults))
    return j.text
}

/// Fault names are plain ASCII kinds ("range-dead"): quoting them needs no escaping.
public func jsonStrings(_ names: [String]) -> String { "[" + names.map { "\"\($0)\"" }.joined(separator: ",") + "]" }
