import Foundation

public struct ThermalRigParameters: Sendable, Equatable {
    public var ambientCelsius = 20.0
    public var ambientHumidity = 50.0
    /// Heat capacity of the enclosure's air and fittings (J/K).
    public var heatCapacity = 400.0
    public var heaterWatts = 150.0
    /// Heat loss through the walls (W/K) and the extra loss at full fan (W/K).
    public var wallConductance = 3.0
    public var fanConductance = 12.0
    /// Air exchange with the room (1/s) with the fan off and the extra at full fan: moisture follows it.
    public var leakRate = 0.002
    public var fanExchangeRate = 0.02
    /// A thermal fuse in the rig's own hardware: above this the heater is cut and stays cut.
    public var fuseCelsius = 85.0
    public init() {}
}

/// An IoT test rig: an enclosure with a heater (on/off) and a fan (duty 0…1), a temperature and a
/// humidity sensor. Lumped thermal model: C·dT/dt = P·heater − (G_wall + G_fan·fan)·(T − T_ambient);
/// the vapour pressure relaxes toward the room's with the air exchange, and relative humidity
/// follows from the Magnus formula, so heating dries the air as it does in a real box.
public struct ThermalRig: Sendable, Equatable {
    public let parameters: ThermalRigParameters
    public private(set) var temperature: Double
    /// Water-vapour partial pressure (hPa).
    public private(set) var vapourPressure: Double
    public var heaterOn = false
    public var fanDuty = 0.0 {
        didSet { fanDuty = min(max(fanDuty.isFinite ? fanDuty : 0, 0), 1) }
    }
    public private(set) var fuseBlown = false
    /// Heater energy delivered (J), for tests.
    public private(set) var heaterEnergy = 0.0

    public init(parameters: ThermalRigParameters = ThermalRigParameters()) {
        self.parameters = parameters
        temperature = parameters.ambientCelsius
        vapourPressure = parameters.ambientHumidity / 100 * Self.saturation(parameters.ambientCelsius)
    }

    /// Saturation vapour pressure over water (hPa), Magnus formula (WMO coefficients).
    public static func saturation(_ celsius: Double) -> Double { 6.112 * exp(17.62 * celsius / (243.12 + celsius)) }

    public var relativeHumidity: Double { min(100, 100 * vapourPressure / Self.saturation(temperature)) }
    public var heating: Bool { heaterOn && !fuseBlown }

    public mutating func step(dt: Double) {
        guard dt > 0 else { return }
        let p = parameters
        let power = heating ? p.heaterWatts : 0
        heaterEnergy += power * dt
        let conductance = p.wallConductance + p.fanConductance * fanDuty
        // Exact solution of the linear ODE over the step (stable for any dt).
        let equilibrium = p.ambientCelsius + power / conductance
        temperature = equilibrium + (temperature - equilibrium) * exp(-conductance * dt / p.heatCapacity)
        let ambientVapour = p.ambientHumidity / 100 * Self.saturation(p.ambientCelsius)
        let exchange = p.leakRate + p.fanExchangeRate * fanDuty
        vapourPressure = ambientVapour + (vapourPressure - ambientVapour) * exp(-exchange * dt)
        if temperature >= p.fuseCelsius { fuseBlown = true }
    }
}
