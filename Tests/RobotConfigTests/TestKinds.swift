import AIOSRobot
import RobotConfig

/// The kinds the unit tests validate against: the runtime's own (`RobotKinds.catalog`), plus a
/// device-less `simulator` actuator kind so that the tests' base file needs no device keys.
enum TestKinds {
    static var catalog: KindCatalog {
        var catalog = RobotKinds.catalog
        catalog.actuators.append(KindSpec(kind: "simulator", summary: "test fixture: carries channels to nothing", fields: [
            FieldSpec("channels", .list(.string, minCount: 1), required: true, refersTo: .channel),
        ]))
        return catalog
    }
}
