import Foundation
import RTScheduler
import Synchronization
import Testing
import Transports
@testable import AIOSRobot

@Suite("Gamepad and MQTT inputs become events")
struct InputRoutingTests {
    @Test func when_gamepad_frames_arrive_expect_latest_axes_buttons_and_a_critical_estop_event() throws {
        let clock = VirtualClock()
        let scheduler = Scheduler(clock: clock)
        let order = Mutex<[String]>([])
        let axes = scheduler.addSource("teleop-axes", queue: QueueSpec(capacity: 4, overflow: .keepLatestPerKey),
                                       subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(20))) { e in
            if case .scalar(let v) = e.payload { order.withLock { $0.append("axis\(e.key)=\(v)") } }
        }
        let buttons = scheduler.addSource("teleop-buttons", queue: QueueSpec(capacity: 16, overflow: .reject),
                                          subscription: Subscription(priority: .high, relativeDeadline: .milliseconds(20))) { e in
            if case .signal(let c, let v) = e.payload { order.withLock { $0.append("button\(c)=\(v)") } }
        }
        let estop = scheduler.addSource("estop", queue: QueueSpec(capacity: 4, overflow: .reject),
                                        subscription: Subscription(priority: .critical, relativeDeadline: .milliseconds(1))) { _ in
            order.withLock { $0.append("ESTOP") }
        }
        let mapping = InputMapping(axes: [.init(code: "ABS_X", name: "turn", deadzone: 0), .init(code: "ABS_Y", name: "drive", deadzone: 0)],
                                   keys: [.init(code: "BTN_SOUTH", action: .deadman), .init(code: "BTN_MODE", action: .emergencyStop)])
        let input = try GamepadInput(mapping: mapping, sources: .init(axes: axes, buttons: buttons, emergencyStop: estop))
        func ev(_ name: String, _ value: Int32) -> InputEvent {
            let c = InputEvent.code(named: name)!
            return InputEvent(type: c.type, code: c.code, value: value)
        }
        // Three frames of stick movement arrive before the dispatcher runs: only the newest per axis survives.
        for x in [1000, 2000, 32767] as [Int32] {
            input.feed(event: ev("ABS_X", x), arrival: 0)
            input.feed(event: .synReport, arrival: 0)
        }
        input.feed(event: ev("ABS_Y", -32768), arrival: 0)
        input.feed(event: ev("BTN_SOUTH", 1), arrival: 0)
        input.feed(event: ev("BTN_MODE", 1), arrival: 0)
        input.feed(event: .synReport, arrival: 0)
        scheduler.runUntilIdle()
        let got = order.withLock { $0 }
        #expect(got.first == "ESTOP")  // critical class first
        #expect(got.contains("axis0=1.0") && !got.contains { $0.hasPrefix("axis0=0.0") })
        #expect(got.filter { $0.hasPrefix("axis0") }.count == 1)
        #expect(got.contains("axis1=-1.0"))
        #expect(got.contains("button2=1") && got.contains("button1=1"))
    }

    @Test(.enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
    func when_mqtt_devices_publish_expect_scalar_events_per_route_and_junk_counted() throws {
        let broker = try MosquittoBroker()
        try broker.start()
        defer { broker.stop() }
        let scheduler = Scheduler(clock: MonotonicClock())
        let values = Mutex<[String]>([])
        let source = scheduler.addSource("rig", queue: QueueSpec(capacity: 8, overflow: .keepLatestPerKey),
                                         subscription: Subscription(priority: .normal, relativeDeadline: .milliseconds(100))) { e in
            if case .scalar(let v) = e.payload { values.withLock { $0.append("\(e.key):\(v)") } }
        }
        try scheduler.start()
        defer { scheduler.stop() }
        let input = MQTTSensorInput(routes: [.init(filter: "rig/+/temperature", fieldPath: "celsius", qos: 1, source: source),
                                             .init(filter: "rig/heater/power", qos: 1, source: source)])
        let client = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "robotd-input")) { message in
            input.handle(message)
        }
        try input.subscribe(on: client)
        try client.start()
        let publisher = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "rig-device")) { _ in }
        try publisher.start()
        let deadline = Date().addingTimeInterval(10)
        while !(client.counters.subscribed.load(ordering: .relaxed) >= 2 && publisher.isConnected) && Date() < deadline { usleep(10_000) }
        try publisher.publish(topic: "rig/bench/temperature", payload: Array(#"{"celsius":21.25}"#.utf8), qos: 1, retain: false)
        try publisher.publish(topic: "rig/heater/power", payload: Array("150".utf8), qos: 1, retain: false)
        try publisher.publish(topic: "rig/heater/power", payload: Array("broken".utf8), qos: 1, retain: false)
        while values.withLock({ $0.count }) < 2 && Date() < deadline { usleep(10_000) }
        usleep(200_000)
        #expect(Set(values.withLock { $0 }) == ["0:21.25", "1:150.0"])
        #expect(input.notANumber.load(ordering: .relaxed) == 1)
        client.stop()
        publisher.stop()
    }
}
