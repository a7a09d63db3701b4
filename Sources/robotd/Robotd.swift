import ArgumentParser

@main
struct Robotd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "robotd",
        abstract: "A real-time robot and IoT-rig runtime: inputs → scheduler → policies → safety guard → actuators.",
        discussion: """
        The simulator alone is a separate program, robotd-sim (robotd-sim --help).

        Example:
          # robotd driving the simulated rover; e-stop at 12 s, reset at 15 s, a picture of the run
          robotd sim --world rover --seconds 20 --estop-at 12 --reset-at 15 --svg run.svg
          # a robot from its configuration file (here: the simulator started separately)
          robotd-sim --world rover & robotd run --config examples/rover-sim.yaml
          # every problem of a robot's configuration file, without touching a device
          robotd check --config examples/rover-hardware.yaml
          # what a GPS receiver on a serial port sends
          robotd echo serial /dev/ttyUSB0 --codec nmea --baud 9600
          # every robot's deadlines, e-stop and safety events on a broker, live
          robotd monitor --broker 127.0.0.1:1883
          # the planner's last goals, plans and outcomes from a robot's memory file
          robotd memory --database /var/lib/robotd/rover-1/memory.sqlite --last 10
          # what this machine can hold
          robotd bench scheduler
        """,
        subcommands: [Run.self, Check.self, Sim.self, Goal.self, MCPCommand.self, Monitor.self, Memory.self, Bench.self, Echo.self, Ports.self])
}
