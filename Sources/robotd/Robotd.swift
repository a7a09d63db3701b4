import ArgumentParser

@main
struct Robotd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "robotd",
        abstract: "A real-time robot and IoT-rig runtime: inputs → scheduler → policies → safety guard → actuators.",
        subcommands: [Run.self, Check.self, Demo.self, Sim.self, Bench.self, Echo.self, Ports.self])
}
