import RobotConfig
import Transports

/// `evdev`: a gamepad, e-stop button or switch box — /dev/input/eventN through libevdev, or a FIFO
/// of input_event records (the simulator's gamepad). Axes reach the policies by name; keys carry
/// actions: `estop`, `reset`, `deadman`, `mode:NAME` or a name of your own.
enum EvdevInputKind: InputKind {
    static let spec = KindSpec(kind: "evdev", summary: "an input device: gamepad, e-stop button, switch box", fields: [
        FieldSpec("path", .string, required: true, help: "/dev/input/by-id/…-event-joystick, /dev/input/eventN, or an input_event FIFO"),
        FieldSpec("grab", .bool, help: "take the device exclusively (EVIOCGRAB), default true"),
        FieldSpec("axes", .list(.object([
            FieldSpec("code", .string, required: true, help: "libevdev name, e.g. ABS_Y"),
            FieldSpec("name", .string, required: true, help: "the name policies use, e.g. linear"),
            FieldSpec("deadzone", .number(0...0.99), help: "fraction of the half-range read as 0, default 0.05"),
            FieldSpec("invert", .bool, help: "default false"),
            FieldSpec("scale", .number(-1000...1000), help: "default 1"),
            FieldSpec("min", .integer(-2_147_483_648...2_147_483_647), help: "raw minimum, default -32768"),
            FieldSpec("max", .integer(-2_147_483_648...2_147_483_647), help: "raw maximum, default 32767"),
        ]))),
        FieldSpec("keys", .list(.object([
            FieldSpec("code", .string, required: true, help: "libevdev name, e.g. BTN_EAST"),
            FieldSpec("action", .string, required: true, help: "estop, reset, deadman, mode:NAME or a name"),
        ]))),
    ])

    static func make(_ settings: InputSettings, context: InputBuildContext) throws -> InputEndpoint {
        let s = context.settings(of: settings)
        let axes = try s.list("axes").enumerated().map { (i, item) throws(KindError) in
            let a = s.nested("axes[\(i)]", item)
            let minimum = try a.integer("min", default: -32768), maximum = try a.integer("max", default: 32767)
            guard let lo = Int32(exactly: minimum), let hi = Int32(exactly: maximum) else {
                throw KindError("\(a.owner): min and max must fit in 32 bits")
            }
            return InputMapping.Axis(code: try a.string("code"), name: try a.string("name"), minimum: lo, maximum: hi,
                                     deadzone: try a.number("deadzone", default: 0.05), invert: try a.bool("invert", default: false),
                                     scale: try a.number("scale", default: 1))
        }
        let keys = try s.list("keys").enumerated().map { (i, item) throws(KindError) in
            let k = s.nested("keys[\(i)]", item)
            return InputMapping.Key(code: try k.string("code"), action: InputMapping.Action(try k.string("action")))
        }
        let mapping = InputMapping(axes: axes, keys: keys)
        do { try mapping.validate() } catch { throw KindError("input \(settings.name): \(error)") }
        let gamepad = try context.gamepad(mapping)
        // Its loss (EOF, ENODEV, the FIFO's writer gone) is a lost link for the guard: a stop,
        // whatever the device was for.
        _ = context.link(timeout: nil)
        // Grabbed by default: robotd owns the robot's controls; a program that grabbed the device
        // first makes the start fail instead of leaving robotd deaf.
        return .inputDevice(.init(path: try s.string("path"), grab: try s.bool("grab", default: true), gamepad: gamepad,
                                  isEStop: gamepad.estop != nil))
    }
}
