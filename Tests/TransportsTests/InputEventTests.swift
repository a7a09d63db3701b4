import Foundation
import Glibc
import Synchronization
import Testing
@testable import Transports

@Suite("evdev input: input_event streams, SYN_DROPPED, mapping", .serialized)
struct InputEventTests {
    static let mapping = InputMapping(
        axes: [InputMapping.Axis(code: "ABS_X", name: "turn", minimum: -32768, maximum: 32767, deadzone: 0.1),
               InputMapping.Axis(code: "ABS_Y", name: "drive", minimum: 0, maximum: 255, deadzone: 0, invert: true, scale: 0.5)],
        keys: [InputMapping.Key(code: "BTN_SOUTH", action: .deadman),
               InputMapping.Key(code: "BTN_MODE", action: .emergencyStop),
               InputMapping.Key(code: "BTN_START", action: .mode("auto"))])

    static func ev(_ name: String, _ value: Int32) -> InputEvent {
        let c = InputEvent.code(named: name)!
        return InputEvent(seconds: 1, microseconds: 2, type: c.type, code: c.code, value: value)
    }

    @Test func when_code_names_are_looked_up_expect_libevdev_values() {
        #expect(InputEvent.code(named: "ABS_X")! == (3, 0))
        #expect(InputEvent.code(named: "BTN_SOUTH")! == (1, 0x130))
        #expect(InputEvent.code(named: "KEY_SPACE")! == (1, 57))
        #expect(InputEvent.code(named: "ABS_NOPE") == nil)
        #expect(Self.ev("BTN_SOUTH", 1).codeName == "BTN_SOUTH")
        #expect(throws: InputError.self) { try InputMapping(axes: [.init(code: "BTN_SOUTH", name: "x")]).validate() }
        #expect(throws: InputError.self) { try InputMapping(keys: [.init(code: "KEY_NOT_A_KEY", action: .deadman)]).validate() }
    }

    /// F8: every axis and key has a slot of its own, or the mapping is refused before any event:
    /// a code mapped twice reaches one entry only (here the e-stop key would do nothing), a name
    /// or an action given twice shares one level.
    @Test func when_a_code_a_name_or_an_action_is_given_twice_expect_the_mapping_refused_with_both_places() {
        func refusal(_ mapping: InputMapping) -> String {
            do { try mapping.validate() } catch { return error.description }
            return "accepted"
        }
        #expect(refusal(Self.mapping) == "accepted")
        let shadowed = refusal(InputMapping(keys: [.init(code: "BTN_EAST", action: .emergencyStop), .init(code: "BTN_EAST", action: .named("reset"))]))
        #expect(shadowed.contains("keys[1]: code BTN_EAST is already keys[0]'s (estop)"), "\(shadowed)")
        let axisCode = refusal(InputMapping(axes: [.init(code: "ABS_Y", name: "linear"), .init(code: "ABS_Y", name: "throttle")]))
        #expect(axisCode.contains("axes[1]: code ABS_Y is already axes[0]'s"), "\(axisCode)")
        let axisName = refusal(InputMapping(axes: [.init(code: "ABS_Y", name: "linear"), .init(code: "ABS_RX", name: "linear")]))
        #expect(axisName.contains("axes[1]: name linear is already axes[0]'s"), "\(axisName)")
        let action = refusal(InputMapping(keys: [.init(code: "BTN_START", action: .named("reset")), .init(code: "BTN_SELECT", action: .named("reset"))]))
        #expect(action.contains("keys[1]: action reset is already keys[0]'s"), "\(action)")
        let estops = refusal(InputMapping(keys: [.init(code: "BTN_EAST", action: .emergencyStop), .init(code: "BTN_WEST", action: .emergencyStop)]))
        #expect(estops.contains("keys[1]: action estop is already keys[0]'s"), "\(estops)")
        #expect(Self.mapping.actionSlot(.mode("auto")) == 2 && Self.mapping.actionSlot(.named("reset")) == nil)
    }

    @Test func when_axes_are_normalised_expect_deadzone_inversion_and_scale() {
        let turn = Self.mapping.axes[0]
        #expect(turn.normalise(0) == 0)
        #expect(turn.normalise(3000) == 0)  // inside the 10 % deadzone
        #expect(turn.normalise(32767) == 1)
        #expect(abs(turn.normalise(-32768) + 1) < 1e-9)
        #expect(abs(turn.normalise(Int32(0.55 * 32767.5)) - 0.5) < 1e-3)  // continuous at the deadzone edge
        let drive = Self.mapping.axes[1]
        #expect(drive.normalise(255) == -0.5)  // inverted, scaled
        #expect(drive.normalise(0) == 0.5)
    }

    /// A simulator that restarts makes a new FIFO at the same path (the old one is unlinked, its
    /// writer never came): the reader notices the replacement and reads from the new one.
    @Test func when_the_fifo_is_replaced_at_its_path_expect_the_reader_to_follow_it() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("robotd-fifo-swap-\(getpid())").path
        unlink(path)
        try #require(mkfifo(path, 0o600) == 0)
        defer { unlink(path) }
        let received = Mutex<[UInt8]>([])
        let reader = try StreamReader(path: path) { chunk, _ in received.withLock { $0 += Array(chunk) } }
        defer { reader.stop() }
        usleep(100_000)
        unlink(path)
        usleep(100_000)  // gone for a while: the reader waits rather than giving up
        try #require(mkfifo(path, 0o600) == 0)
        var writer: Int32 = -1
        let deadline = Date().addingTimeInterval(5)
        while writer < 0 && Date() < deadline {  // ENXIO until the reader has the new FIFO open
            writer = open(path, O_WRONLY | O_NONBLOCK)
            if writer < 0 { usleep(10_000) }
        }
        try #require(writer >= 0)
        _ = Glibc.write(writer, "abc", 3)
        close(writer)
        while received.withLock({ $0.count }) < 3 && Date() < deadline { usleep(5_000) }
        #expect(received.withLock { $0 } == Array("abc".utf8))
        #expect(reader.state.reopened.load(ordering: .relaxed) >= 1)
    }

    /// The same stream a simulator writes: frames, then a SYN_DROPPED sequence, through a real
    /// FIFO; the events are decoded by the same assembler that libevdev's events go to.
    @Test func when_a_fifo_carries_frames_and_a_syn_dropped_expect_frames_mapped_and_the_dropped_part_discarded() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("robotd-evdev-\(getpid())").path
        unlink(path)
        try #require(mkfifo(path, 0o600) == 0)
        defer { unlink(path) }
        let stream: [InputEvent] = [
            Self.ev("ABS_X", 32767), Self.ev("BTN_SOUTH", 1), .synReport,
            Self.ev("ABS_Y", 0), .synReport,
            .synDropped, Self.ev("ABS_X", -32768), Self.ev("BTN_MODE", 1), .synReport,  // lost: discarded
            Self.ev("BTN_SOUTH", 0), Self.ev("BTN_START", 1), Self.ev("BTN_START", 2), .synReport,
        ]
        var bytes: [UInt8] = []
        for e in stream { e.write(into: &bytes) }
        #expect(bytes.count == stream.count * InputEvent.size)

        let received = Mutex<[UInt8]>([])
        let reader = try StreamReader(path: path) { chunk, _ in received.withLock { $0 += Array(chunk) } }
        defer { reader.stop() }
        let writer = open(path, O_WRONLY)
        try #require(writer >= 0)
        // Split a record across writes, as a pipe may.
        _ = bytes.withUnsafeBytes { Glibc.write(writer, $0.baseAddress, 37) }
        usleep(20_000)
        _ = bytes.withUnsafeBytes { Glibc.write(writer, $0.baseAddress! + 37, $0.count - 37) }
        close(writer)
        let deadline = Date().addingTimeInterval(5)
        while received.withLock({ $0.count }) < bytes.count && Date() < deadline { usleep(5_000) }

        var decoder = InputEventStreamDecoder()
        var assembler = try InputFrameAssembler(mapping: Self.mapping)
        var changes: [InputChange] = []
        received.withLock { data in
            data.withUnsafeBytes { raw in
                decoder.feed(raw) { event in assembler.feed(event) { changes.append($0) } }
            }
        }
        #expect(decoder.records == stream.count && decoder.pendingBytes == 0)
        #expect(changes == [
            .axis(name: "turn", value: 1), .key(action: .deadman, pressed: true),
            .axis(name: "drive", value: 0.5),
            .resync,
            .key(action: .deadman, pressed: false), .key(action: .mode("auto"), pressed: true),
        ])
        #expect(assembler.droppedSequences == 1 && assembler.frames == 3)
    }

    @Test func when_a_plain_file_is_replayed_expect_end_reported() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("robotd-evdev-file-\(getpid())").path
        var bytes: [UInt8] = []
        Self.ev("BTN_MODE", 1).write(into: &bytes)
        InputEvent.synReport.write(into: &bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let ended = Mutex<String?>(nil)
        let received = Atomic<Int>(0)
        let reader = try StreamReader(path: path, onEnd: { reason in ended.withLock { $0 = reason } }) { chunk, _ in
            received.add(chunk.count, ordering: .relaxed)
        }
        let deadline = Date().addingTimeInterval(5)
        while ended.withLock({ $0 }) == nil && Date() < deadline { usleep(5_000) }
        reader.stop()
        #expect(ended.withLock { $0 } == "end of file")
        #expect(received.load(ordering: .relaxed) == 48)
    }

    /// No /dev/input here (the kernel has no evdev modules), so the libevdev device path can only
    /// be exercised on its error paths: a missing node, and a non-evdev descriptor (ENOTTY).
    @Test func when_libevdev_opens_a_missing_node_or_a_non_evdev_file_expect_clear_errors_no_dev_input_here() throws {
        #expect(throws: InputError.self) { _ = try EvdevDevice(path: "/dev/input/event_robotd_missing") }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("robotd-not-evdev-\(getpid())").path
        _ = FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3]))
        defer { unlink(path) }
        do {
            _ = try EvdevDevice(path: path)
            Issue.record("a regular file was accepted as an evdev device")
        } catch {
            #expect(error.description.contains("not an evdev device"))
        }
    }

    @Test func when_garbage_values_arrive_expect_unmapped_counted_and_no_crash() throws {
        var assembler = try InputFrameAssembler(mapping: Self.mapping)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<10_000 {
            let e = InputEvent(type: UInt16.random(in: 0...5, using: &rng), code: UInt16.random(in: 0...0x300, using: &rng),
                               value: Int32.random(in: .min ... .max, using: &rng))
            assembler.feed(e) { change in
                if case .axis(_, let v) = change { #expect(v.isFinite && abs(v) <= 1) }
            }
        }
        #expect(assembler.unmapped > 0)
        // Random events rarely hit a mapped axis: feed out-of-range values to both axes on purpose.
        // The first SYN_REPORT ends any frame the garbage left open (or a SYN_DROPPED's skip).
        assembler.feed(.synReport) { _ in }
        var axes: [Double] = []
        for raw in [Int32.min, -32769, -1, 256, 32768, Int32.max] {
            for event in [Self.ev("ABS_X", raw), Self.ev("ABS_Y", raw), .synReport] {
                assembler.feed(event) { change in
                    if case .axis(_, let v) = change { axes.append(v) }
                }
            }
        }
        #expect(axes.count == 12)
        #expect(axes.allSatisfy { $0.isFinite && abs($0) <= 1 }, "\(axes)")
    }
}
