import CMosquitto
import CRealtime
import Foundation
import Glibc
import Platform
import Synchronization

/// Publishes MQTT messages: the libmosquitto client below, or a recorder in tests.
public protocol MQTTPublishing: AnyObject, Sendable {
    var isConnected: Bool { get }
    func publish(topic: String, payload: [UInt8], qos: Int, retain: Bool) throws
    /// The same, from a thread that must never wait (the supervisor's emergency safe state).
    func publishEmergency(topic: String, payload: [UInt8], qos: Int, retain: Bool) throws
    /// An actuator channel's command topic, registered before the connection starts.
    func commandTopic(_ topic: String, qos: Int, retain: Bool, safePayload: [UInt8]) -> MQTTCommandTopic
    /// A channel's value on its command topic; a payload equal to the topic's safe payload is its
    /// safe value (`MQTTClient.publishCommand`: the one outstanding message per topic, a safe value
    /// never refused by the queue's bound). `approval`: checked again if the command goes out
    /// later than this call (nil: never checked again).
    func publishCommand(_ payload: [UInt8], on topic: MQTTCommandTopic, approval: MQTTCommandApproval?) throws
}

extension MQTTPublishing {
    /// A publisher that never waits in `publish` (a recorder, the lockstep simulator).
    public func publishEmergency(topic: String, payload: [UInt8], qos: Int, retain: Bool) throws {
        try publish(topic: topic, payload: payload, qos: qos, retain: retain)
    }

    /// A publisher without a network: no slot, every value published at once.
    public func commandTopic(_ topic: String, qos: Int, retain: Bool, safePayload: [UInt8]) -> MQTTCommandTopic {
        MQTTCommandTopic(topic: topic, qos: qos, retain: retain, safePayload: safePayload)
    }

    public func publishCommand(_ payload: [UInt8], on topic: MQTTCommandTopic, approval: MQTTCommandApproval?) throws {
        try publish(topic: topic.topic, payload: payload, qos: topic.qos, retain: topic.retain)
    }

    /// The topic's safe value.
    public func publishSafeValue(on topic: MQTTCommandTopic) throws {
        try publishCommand(topic.safePayload, on: topic, approval: nil)
    }

    /// The topic's safe value from a thread that must never wait: counted on the topic first (an
    /// atomic), so that a command still waiting there for the outstanding message is dropped, never
    /// sent after this one.
    public func publishEmergencySafeValue(on topic: MQTTCommandTopic) throws {
        topic.emergencies.add(1, ordering: .sequentiallyConsistent)
        try publishEmergency(topic: topic.topic, payload: topic.safePayload, qos: topic.qos, retain: topic.retain)
    }
}

public struct MQTTError: Error, CustomStringConvertible, Equatable, Sendable {
    public var code: Int32
    public var operation: String
    /// errno when `code` is MOSQ_ERR_ERRNO (or a file could not be read).
    public var errno: Int32?
    public var description: String { "mqtt \(operation): \(MQTTWords.error(code, errno: errno))" }

    /// Not a libmosquitto code: the client's own bound on messages not yet written out
    /// (`MQTTOptions.maxQueuedMessages`) refused the message.
    public static let queueFullCode: Int32 = -1000
    /// Not a libmosquitto code: the client's own bound on the bytes of those messages
    /// (`MQTTOptions.maxQueuedBytes`) refused the message.
    public static let queueBytesFullCode: Int32 = -1001
    /// Not a libmosquitto code: the command topic's outstanding message went unconfirmed past the
    /// confirmation limit (`MQTTOptions.commandConfirmationSeconds`); the next command on the topic
    /// is refused with it, once, so that its back end reports the channel stuck.
    public static let commandUnconfirmedCode: Int32 = -1002
}

/// libmosquitto's result codes, CONNACK codes and errno in words ("connection refused", "host
/// not found", "bad user name or password"), for log lines a person can act on.
public enum MQTTWords {
    /// A libmosquitto result code; `errno` is read when the code is MOSQ_ERR_ERRNO.
    public static func error(_ code: Int32, errno: Int32? = nil) -> String {
        switch code {
        case MQTTError.queueFullCode: return "outgoing queue full (max_queued_messages): message dropped"
        case MQTTError.queueBytesFullCode: return "outgoing queue full (max_queued_bytes): message dropped"
        case MQTTError.commandUnconfirmedCode:
            return "the channel's last command went unconfirmed past the confirmation limit (the channel was stuck): command refused"
        case MOSQ_ERR_ERRNO.rawValue:
            guard let errno, errno != 0 else { return "system error" }
            return SystemErrorWords.text(errno)
        case MOSQ_ERR_EAI.rawValue, MOSQ_ERR_LOOKUP.rawValue: return "host not found"
        case MOSQ_ERR_TLS.rawValue, MOSQ_ERR_TLS_HANDSHAKE.rawValue:
            return "TLS error (the CA file, the broker's certificate, or a port without TLS)"
        case MOSQ_ERR_OCSP.rawValue: return "TLS certificate check (OCSP) failed"
        case MOSQ_ERR_CONN_LOST.rawValue: return "connection lost"
        case MOSQ_ERR_NO_CONN.rawValue: return "not connected"
        case MOSQ_ERR_CONN_REFUSED.rawValue: return "the broker refused the connection"
        case MOSQ_ERR_KEEPALIVE.rawValue: return "the broker stopped answering (keepalive timed out)"
        case MOSQ_ERR_TIMEOUT.rawValue: return "timed out"
        case MOSQ_ERR_PROTOCOL.rawValue, MOSQ_ERR_MALFORMED_PACKET.rawValue: return "protocol error (is it an MQTT broker?)"
        case MOSQ_ERR_AUTH.rawValue: return "authentication failed"
        case MOSQ_ERR_ACL_DENIED.rawValue: return "not authorised (broker ACL)"
        case MOSQ_ERR_PAYLOAD_SIZE.rawValue, MOSQ_ERR_OVERSIZE_PACKET.rawValue: return "message too large"
        case MOSQ_ERR_INVAL.rawValue: return "invalid argument"
        case MOSQ_ERR_NOMEM.rawValue: return "out of memory"
        default:
            let text = mosquitto_strerror(code).map { String(cString: $0) } ?? "error"
            return text + " (mosquitto error \(code))"
        }
    }

    /// A CONNACK return code (MQTT 3.1.1): why the broker refused the connection.
    public static func connack(_ code: Int32) -> String {
        switch code {
        case 1: "unacceptable protocol version"
        case 2: "client identifier rejected"
        case 3: "server unavailable"
        case 4: "bad user name or password"
        case 5: "not authorised"
        default: mosquitto_connack_string(code).map { String(cString: $0) } ?? "refusal code \(code)"
        }
    }
}

public struct MQTTOptions: Sendable, Equatable {
    public struct Will: Sendable, Equatable {
        public var topic: String
        public var payload: [UInt8]
        public var qos: Int
        public var retain: Bool
        public init(topic: String, payload: [UInt8], qos: Int = 1, retain: Bool = true) {
            self.topic = topic
            self.payload = payload
            self.qos = qos
            self.retain = retain
        }
    }

    public var host: String
    public var port: Int
    public var clientID: String
    public var username: String?
    public var password: String?
    /// TLS with this CA file (PEM); nil: plain TCP.
    public var caFile: String?
    public var keepaliveSeconds: Int
    public var cleanSession: Bool
    public var will: Will?
    public var reconnectMinSeconds: UInt32
    public var reconnectMaxSeconds: UInt32
    /// At most this many published messages not yet written out (QoS 0) or acknowledged (QoS 1,
    /// 2) at once; a publish beyond is refused with `MQTTError.queueFullCode` and counted
    /// (`Counters.droppedQueueFull`). libmosquitto's own outgoing queue has no bound for QoS 0:
    /// a stalled broker would otherwise grow it without end. nil: no bound.
    public var maxQueuedMessages: Int?
    /// At most this many bytes (payloads and topics) of those messages at once; a publish beyond is
    /// refused with `MQTTError.queueBytesFullCode` and counted. nil: no bound.
    public var maxQueuedBytes: Int?
    /// SO_SNDBUF for the connection's socket, set after every connect (the kernel doubles it and
    /// keeps a floor); nil: the system's default. Small values make a stalled broker fill the
    /// socket quickly (the isolation test).
    public var sendBufferBytes: Int?
    /// How long a command topic's outstanding message may stay unconfirmed while connected,
    /// counted from its hand-over or the latest connect, whichever is later, before it is given up
    /// (`MQTTClient.publishCommand`); nil: three keepalive intervals. libmosquitto drops a link on
    /// which nothing has come for two keepalive intervals (a PINGREQ after one, no PINGRESP within
    /// the next), so beyond three a stalled broker has already been reported as a lost link: what
    /// is left is a confirmation that will never come — lost in the count, or a broker that talks
    /// but does not acknowledge — and the channel would otherwise wait for it for ever.
    public var commandConfirmationSeconds: Double?

    public init(host: String = "127.0.0.1", port: Int = 1883, clientID: String, username: String? = nil,
                password: String? = nil, caFile: String? = nil, keepaliveSeconds: Int = 10, cleanSession: Bool = true,
                will: Will? = nil, reconnectMinSeconds: UInt32 = 1, reconnectMaxSeconds: UInt32 = 8,
                maxQueuedMessages: Int? = nil, maxQueuedBytes: Int? = nil, sendBufferBytes: Int? = nil,
                commandConfirmationSeconds: Double? = nil) {
        self.host = host
        self.port = port
        self.clientID = clientID
        self.username = username
        self.password = password
        self.caFile = caFile
        self.keepaliveSeconds = keepaliveSeconds
        self.cleanSession = cleanSession
        self.will = will
        self.reconnectMinSeconds = reconnectMinSeconds
        self.reconnectMaxSeconds = reconnectMaxSeconds
        self.maxQueuedMessages = maxQueuedMessages
        self.maxQueuedBytes = maxQueuedBytes
        self.sendBufferBytes = sendBufferBytes
        self.commandConfirmationSeconds = commandConfirmationSeconds
    }

    /// `commandConfirmationSeconds` or its default, in nanoseconds (at least 1 ms).
    var commandConfirmationLimit: Int64 {
        let seconds = commandConfirmationSeconds ?? 3 * Double(max(1, keepaliveSeconds))
        guard seconds.isFinite else { return .max }
        return Int64(min(max(seconds, 0.001), 1e9) * 1e9)
    }

    /// `host:port` (port defaults to 1883).
    public static func parseBroker(_ text: String) -> (host: String, port: Int)? {
        let parts = text.split(separator: ":")
        guard let host = parts.first, !host.isEmpty, parts.count <= 2 else { return nil }
        let port = parts.count == 2 ? Int(parts[1]) : 1883
        guard let port, (1...65535).contains(port) else { return nil }
        return (String(host), port)
    }
}

/// One received message, with its arrival instant (CLOCK_MONOTONIC ns).
public struct MQTTMessage: Sendable {
    public var topic: String
    public var payload: [UInt8]
    public var qos: Int
    public var retained: Bool
    /// CLOCK_MONOTONIC (ns) when it arrived; a lockstep simulation passes its own instant.
    public var arrival: Int64

    public init(topic: String, payload: [UInt8], qos: Int = 0, retained: Bool = false, arrival: Int64) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retained = retained
        self.arrival = arrival
    }
}

/// A libmosquitto client on its own network thread (`mosquitto_loop_start`). It reconnects with
/// exponential backoff and **re-subscribes every subscription after each reconnect** (bridges that
/// forget this go silent after a broker restart: mqtt_bridge #61, mqtt_client #48). Callbacks run on
/// the network thread, never on the dispatch thread.
public final class MQTTClient: MQTTPublishing, @unchecked Sendable {
    // @unchecked: `mosq` is created in init and destroyed in deinit; libmosquitto is thread-safe
    // for publish/subscribe with a running loop thread; our own state is in Mutex/Atomic.
    public enum LinkEvent: Sendable, Equatable {
        case connected
        case disconnected(code: Int32)
        /// The broker answered and refused (CONNACK code: bad user name or password, …).
        case connectRefused(code: Int32)
        /// The connection (TCP, TLS) could not be made; retried with backoff. `errno` is the
        /// system's reason when `code` is MOSQ_ERR_ERRNO (connection refused, no route, …).
        case connectFailed(code: Int32, errno: Int32)

        /// The event's cause in words: "connection refused", "host not found", "the broker
        /// refused the connection: bad user name or password", "connection lost".
        public var reason: String {
            switch self {
            case .connected: "connected"
            case .disconnected(let code): code == 0 ? "disconnected" : MQTTWords.error(code)
            case .connectRefused(let code): "the broker refused the connection: \(MQTTWords.connack(code))"
            case .connectFailed(let code, let errno): MQTTWords.error(code, errno: errno)
            }
        }
    }

    public struct Subscription: Sendable {
        public var filter: String
        public var qos: Int
        public init(filter: String, qos: Int = 0) {
            self.filter = filter
            self.qos = qos
        }
    }

    public final class Counters: Sendable {
        public let received = Atomic<UInt64>(0)
        public let published = Atomic<UInt64>(0)
        public let publishFailures = Atomic<UInt64>(0)
        public let connects = Atomic<UInt64>(0)
        public let disconnects = Atomic<UInt64>(0)
        /// SUBACKs received (each subscription, after every (re)connect).
        public let subscribed = Atomic<UInt64>(0)
        /// SUBACKs in which the broker refused the subscription (granted QoS 0x80), since start.
        public let subscriptionsRefused = Atomic<UInt64>(0)
        /// The same, in the current connection only: a broker that refused a subscription (an ACL
        /// deny) and grants it after a reconnect (the ACL fixed) is healthy again.
        let refusedThisConnection = Atomic<UInt64>(0)
        /// Publications libmosquitto reported done (on_publish: a QoS 0 message written to the
        /// socket, a QoS 1 or 2 message acknowledged).
        public let confirmed = Atomic<UInt64>(0)
        /// Publications refused because `maxQueuedMessages` or `maxQueuedBytes` were outstanding.
        public let droppedQueueFull = Atomic<UInt64>(0)
        /// Unconfirmed QoS 0 messages libmosquitto discarded at a reconnect (never written).
        public let discardedAtReconnect = Atomic<UInt64>(0)
        /// Emergency publications sent while the ledger's lock was busy and its every slot taken:
        /// out, but not counted against the bound (expected never).
        public let emergencyUnaccounted = Atomic<UInt64>(0)
        /// Commands on a command topic that never went out: replaced by a newer value (or the safe
        /// value) while the topic's outstanding message waited for its confirmation, or dropped
        /// with the connection or by an emergency safe value.
        public let superseded = Atomic<UInt64>(0)
        /// Safe values handed over although the bound (`maxQueuedMessages`, `maxQueuedBytes`) was
        /// reached: the bound never refuses one.
        public let safeValuesOverBound = Atomic<UInt64>(0)
        /// Safe values not handed over again: the topic's newest outstanding message is that safe
        /// value already, and nothing has been handed over on the topic since.
        public let safeValuesAlreadyLast = Atomic<UInt64>(0)
        /// Commands that waited for their topic's outstanding message and were dropped when their
        /// turn came: their approval had run out (`validUntil`), or the guard had latched or reset
        /// since (its epoch moved). Never sent.
        public let expired = Atomic<UInt64>(0)
        /// Command topics whose outstanding message went unconfirmed past the confirmation limit
        /// while connected: given up, the slot freed, the next command refused (a stuck channel,
        /// reported to the actuator's owner).
        public let unconfirmedCommands = Atomic<UInt64>(0)
    }

    public let options: MQTTOptions
    public let counters = Counters()
    private let mosq: OpaquePointer
    private let subscriptions = Mutex<[Subscription]>([])
    private let connected = Atomic<Bool>(false)
    /// Messages handed to libmosquitto and not yet confirmed by on_publish, by message id.
    /// Sized for the bound at creation, so that nothing under its lock allocates. The supervisor's
    /// emergency publish never waits for its lock (`publishEmergency`). Internal: tests hold it.
    let ledger: LedgerLock
    /// This connection's SUBSCRIBEs not yet answered (SUBACK); set before `connected`, so that a
    /// link read between the two is never up.
    private let subscriptionsAwaited = Atomic<Int>(0)
    private let onMessage: @Sendable (MQTTMessage) -> Void
    private let onEvent: @Sendable (LinkEvent) -> Void
    private let aborting = Atomic<Bool>(false)
    /// The broker answered this connection attempt (CONNACK, accepted or refused); set on the
    /// network thread, read there too.
    private let connackSeen = Atomic<Bool>(false)
    private let network = WorkerSlot()
    /// The command topics with a slot in the ledger (`commandTopic`).
    private let commandTopics = Mutex<[MQTTCommandTopic]>([])
    /// A command topic's outstanding message was confirmed (set on the network thread in
    /// on_publish; the commands waiting are handed over after the loop's turn).
    private let commandSlotFreed = Atomic<Bool>(false)
    /// CLOCK_MONOTONIC (ns) of the latest CONNACK accepted: libmosquitto re-sends the QoS 1 and 2
    /// messages it holds then, so an outstanding message's wait for its confirmation starts anew.
    private let lastConnectAt = Atomic<Int64>(0)

    private static let libraryReady: Bool = mosquitto_lib_init() == MOSQ_ERR_SUCCESS.rawValue

    public init(options: MQTTOptions, onEvent: @escaping @Sendable (LinkEvent) -> Void = { _ in },
                onMessage: @escaping @Sendable (MQTTMessage) -> Void) throws(MQTTError) {
        guard Self.libraryReady else { throw MQTTError(code: MOSQ_ERR_UNKNOWN.rawValue, operation: "lib_init") }
        self.options = options
        self.onMessage = onMessage
        self.onEvent = onEvent
        ledger = LedgerLock(capacity: options.maxQueuedMessages ?? OutgoingLedger.unboundedCapacity)
        guard let mosq = mosquitto_new(options.clientID, options.cleanSession, nil) else {
            throw MQTTError(code: MOSQ_ERR_NOMEM.rawValue, operation: "new")
        }
        self.mosq = mosq
        // Threads other than our network loop publish (the actuator writers): libmosquitto must
        // then guard its state with its own locks.
        _ = mosquitto_threaded_set(mosq, true)
        _ = mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311)
        mosquitto_user_data_set(mosq, Unmanaged.passUnretained(self).toOpaque())
        Self.installCallbacks(mosq)
        func check(_ rc: Int32, _ operation: String) throws(MQTTError) {
            if rc != MOSQ_ERR_SUCCESS.rawValue { throw MQTTError(code: rc, operation: operation) }
        }
        if let username = options.username {
            try check(mosquitto_username_pw_set(mosq, username, options.password), "username_pw_set")
        }
        if let caFile = options.caFile {
            // libmosquitto only says "invalid argument" for a CA file it cannot read.
            guard access(caFile, R_OK) == 0 else { throw MQTTError(code: MOSQ_ERR_ERRNO.rawValue, operation: "CA file \(caFile)", errno: errno) }
            try check(mosquitto_tls_set(mosq, caFile, nil, nil, nil, nil), "tls_set")
        }
        if let will = options.will {
            try check(will.payload.withUnsafeBytes {
                mosquitto_will_set(mosq, will.topic, Int32($0.count), $0.baseAddress, Int32(will.qos), will.retain)
            }, "will_set")
        }
    }

    /// Starts the network thread: it connects (a broker that is down now is retried with
    /// exponential backoff), runs libmosquitto's loop, and reconnects whenever the link drops.
    /// (Our own loop rather than `mosquitto_loop_start`: that one does not retry a first
    /// connection that was refused.)
    public func start() throws {
        try network.start(name: "mqtt-network") { [self] stop in runNetwork(stop) }
    }

    private func runNetwork(_ stop: StopFlag) {
        var delay = max(options.reconnectMinSeconds, 1) * 1000
        var haveConnected = false
        var linkUp = false
        var nextConfirmationCheck: Int64 = 0
        while !stop.isSet {
            if !linkUp {
                connackSeen.store(false, ordering: .relaxed)
                // libmosquitto drops every packet not yet written when it (re)connects: the QoS 0
                // messages among them are never confirmed (QoS 1 and 2 ones are kept and sent again).
                var freed = false
                let discarded = ledger.withLock { $0.discardQoS0(freedSlot: &freed) }
                if discarded > 0 { counters.discardedAtReconnect.add(UInt64(discarded), ordering: .relaxed) }
                if freed { commandSlotFreed.store(true, ordering: .releasing) }
                let rc = haveConnected ? mosquitto_reconnect(mosq)
                    : mosquitto_connect(mosq, options.host, Int32(options.port), Int32(options.keepaliveSeconds))
                if rc != MOSQ_ERR_SUCCESS.rawValue {
                    onEvent(.connectFailed(code: rc, errno: rc == MOSQ_ERR_ERRNO.rawValue ? errno : 0))
                    stop.sleep(milliseconds: Int(delay))
                    delay = min(delay * 2, max(options.reconnectMaxSeconds, 1) * 1000)
                    continue
                }
                haveConnected = true
                linkUp = true
                applySendBuffer()
                delay = max(options.reconnectMinSeconds, 1) * 1000
            }
            let rc = mosquitto_loop(mosq, 100, 1)
            if rc == MOSQ_ERR_SUCCESS.rawValue {
                sweepWrittenQoS0()
                // Ten times a second at most: a walk over the command topics.
                let now = rt_monotonic_ns()
                if now >= nextConfirmationCheck {
                    nextConfirmationCheck = now + 100_000_000
                    expireUnconfirmedCommands(now: now)
                }
                handOverWaitingCommands()
            }
            if rc != MOSQ_ERR_SUCCESS.rawValue && !stop.isSet {
                let cause = rc == MOSQ_ERR_ERRNO.rawValue ? errno : 0
                linkUp = false
                let wasConnected = connected.exchange(false, ordering: .relaxed)
                // After `connected` is false: a command given from now on is refused.
                dropWaitingCommands()
                if wasConnected {  // lost without a disconnect callback
                    counters.disconnects.add(1, ordering: .relaxed)
                    onEvent(.disconnected(code: rc))
                } else if !connackSeen.load(ordering: .relaxed) {
                    // The socket connected but the session never came up (a TLS handshake that
                    // failed, a peer that is no MQTT broker): a failed connection, not silence.
                    onEvent(.connectFailed(code: rc, errno: cause))
                    stop.sleep(milliseconds: Int(delay))
                    delay = min(delay * 2, max(options.reconnectMaxSeconds, 1) * 1000)
                    continue
                }
                stop.sleep(milliseconds: Int(delay))
            }
        }
        if !aborting.load(ordering: .relaxed) {
            mosquitto_disconnect(mosq)
            // Let the DISCONNECT go out.
            for _ in 0..<5 where mosquitto_loop(mosq, 20, 1) == MOSQ_ERR_SUCCESS.rawValue {}
        }
    }

    /// Stops: a clean DISCONNECT (no last will), then the network thread ends.
    public func stop() {
        joinNetworkThread()
        connected.store(false, ordering: .relaxed)
    }

    /// Drops the connection without DISCONNECT (the broker then publishes the last will): what a
    /// crash looks like to the broker, and how the will is tested.
    public func abort() {
        aborting.store(true, ordering: .relaxed)
        joinNetworkThread()
        connected.store(false, ordering: .relaxed)
        // Closes the socket without a DISCONNECT packet; the client is unusable afterwards.
        _ = mosquitto_reinitialise(mosq, options.clientID, options.cleanSession, nil)
    }

    private func joinNetworkThread() { network.stop() }

    deinit {
        joinNetworkThread()
        mosquitto_destroy(mosq)
    }

    public var isConnected: Bool { connected.load(ordering: .relaxed) }

    /// Whether the broker refused one of this connection's subscriptions (an ACL deny).
    public var hasRefusedSubscription: Bool { counters.refusedThisConnection.load(ordering: .relaxed) > 0 }

    /// Connected, and every subscription of this connection granted (its SUBACK arrived, none
    /// refused): what a link that listens on the broker needs. After a (re)connect the CONNACK
    /// comes before the SUBACKs, and a message published in between is not delivered.
    public var isSubscribed: Bool {
        // `connected` first: the count is set before it at each connect.
        isConnected && subscriptionsAwaited.load(ordering: .acquiring) == 0 && !hasRefusedSubscription
    }

    /// Adds a subscription (wildcards `+` and `#` allowed); it is renewed after every reconnect.
    public func subscribe(_ subscription: Subscription) throws(MQTTError) {
        var valid = false
        guard mosquitto_topic_matches_sub(subscription.filter, "a", &valid) == MOSQ_ERR_SUCCESS.rawValue else {
            throw MQTTError(code: MOSQ_ERR_INVAL.rawValue, operation: "subscribe \(subscription.filter)")
        }
        subscriptions.withLock { $0.append(subscription) }
        if isConnected {
            // Awaited before it is sent: its SUBACK may come before mosquitto_subscribe returns.
            subscriptionsAwaited.add(1, ordering: .releasing)
            let rc = mosquitto_subscribe(mosq, nil, subscription.filter, Int32(subscription.qos))
            if rc != MOSQ_ERR_SUCCESS.rawValue { throw MQTTError(code: rc, operation: "subscribe") }
        }
    }

    public func publish(topic: String, payload: [UInt8], qos: Int = 0, retain: Bool = false) throws {
        // Not connected: a QoS 0 message is refused here. A QoS 1 or 2 message is kept by
        // libmosquitto and sent at the next connect, in order, after the ones it re-sends: an
        // actuator's safe value written during the outage must follow the command before it
        // (the ledger's bound applies to what is kept).
        guard isConnected || qos > 0 else {
            counters.publishFailures.add(1, ordering: .relaxed)
            throw MQTTError(code: MOSQ_ERR_NO_CONN.rawValue, operation: "publish \(topic)")
        }
        _ = try handOver(topic: topic, payload: payload, qos: qos, retain: retain, bounded: true, slot: -1)
    }

    /// Hands one message to libmosquitto and accounts it. `bounded`: refused at the bound (else
    /// counted against it all the same). The message's id, or nil when it was confirmed already.
    private func handOver(topic: String, payload: [UInt8], qos: Int, retain: Bool, bounded: Bool, slot: Int) throws -> Int32? {
        let bytes = payload.count + topic.utf8.count
        // Reserved before the hand-off: on_publish may run on the network thread before
        // mosquitto_publish returns here.
        let (refusal, overBound) = ledger.withLock { ledger -> (Int32?, Bool) in
            let refusal = ledger.reserve(bytes: bytes, maxMessages: options.maxQueuedMessages, maxBytes: options.maxQueuedBytes)
            if bounded || refusal == nil { return (refusal, false) }
            _ = ledger.reserve(bytes: bytes, maxMessages: nil, maxBytes: nil)
            return (nil, true)
        }
        if let refusal {
            counters.droppedQueueFull.add(1, ordering: .relaxed)
            throw MQTTError(code: refusal, operation: "publish \(topic)")
        }
        if overBound { counters.safeValuesOverBound.add(1, ordering: .relaxed) }
        var mid: Int32 = 0
        let rc = payload.withUnsafeBytes {
            mosquitto_publish(mosq, &mid, topic, Int32($0.count), $0.baseAddress, Int32(qos), retain)
        }
        // A QoS 1 or 2 message refused for want of a connection (lost just now) is kept by
        // libmosquitto all the same and sent after the reconnect: it stays in the ledger.
        let kept = rc == MOSQ_ERR_SUCCESS.rawValue || (rc == MOSQ_ERR_NO_CONN.rawValue && qos > 0)
        let outstanding = ledger.settle(mid: mid, qos: qos, bytes: bytes, handedOver: kept, slot: slot,
                                        at: slot >= 0 ? rt_monotonic_ns() : 0)
        guard kept else {
            counters.publishFailures.add(1, ordering: .relaxed)
            throw MQTTError(code: rc, operation: "publish \(topic)")
        }
        counters.published.add(1, ordering: .relaxed)
        return outstanding ? mid : nil
    }

    /// Registers an actuator channel's command topic: a slot in the ledger that holds the id of its
    /// newest message not yet confirmed. Before `start` (it allocates).
    public func commandTopic(_ topic: String, qos: Int, retain: Bool, safePayload: [UInt8]) -> MQTTCommandTopic {
        let slot = ledger.withLock { $0.addSlot() }
        let command = MQTTCommandTopic(topic: topic, qos: qos, retain: retain, safePayload: safePayload, slot: slot,
                                       owner: ObjectIdentifier(self))
        commandTopics.withLock { $0.append(command) }
        return command
    }

    /// An actuator channel's value, with at most one message of the topic outstanding: a stalled
    /// broker (a half-open connection that still looks up) must never leave a backlog of stale
    /// commands that libmosquitto would send — and re-send after a reconnect, QoS 1 — ahead of the
    /// safe value; libmosquitto cannot take back what it holds. So:
    /// - a command goes out when the topic has nothing outstanding; otherwise it waits for that
    ///   confirmation, the newest replacing the one waiting (counted: `superseded`). The network
    ///   thread hands it over when the confirmation comes, unless an emergency safe value was
    ///   published on the topic since. Refused at the bound, as any publish. Not connected:
    ///   refused (a command is for now), and what waits is dropped when the connection goes.
    /// - the safe value (the payload equal to the topic's safe payload) drops what waits and goes
    ///   out at once, after the outstanding message (libmosquitto sends in order), never refused by
    ///   the bound (counted against it all the same: at most one per topic beyond it, as it is not
    ///   repeated while it is the topic's outstanding message on the same connection). Kept
    ///   through an outage at QoS 1 or 2.
    /// - a command that waited is checked again when its turn comes: dropped (counted: `expired`)
    ///   if its `approval` has run out or the guard latched or reset since. What the guard approved
    ///   for at most a second must not leave seconds later, after a broker that stalled.
    /// - an outstanding message unconfirmed past the confirmation limit
    ///   (`MQTTOptions.commandConfirmationSeconds`) is given up (counted: `unconfirmedCommands`),
    ///   the command waiting dropped, and the next command refused with
    ///   `MQTTError.commandUnconfirmedCode`: the channel was stuck, and its owner must hear of it
    ///   rather than see every command accepted and none sent.
    /// At a reconnect libmosquitto sends the topic's outstanding QoS 1 or 2 message again as soon as
    /// the CONNACK is in, ahead of anything published from then on (the reactivation's safe
    /// value): it cannot be taken back (docs/mqtt.md).
    public func publishCommand(_ payload: [UInt8], on command: MQTTCommandTopic, approval: MQTTCommandApproval?) throws {
        let safe = payload == command.safePayload
        guard isConnected || (safe && command.qos > 0) else {
            counters.publishFailures.add(1, ordering: .relaxed)
            throw MQTTError(code: MOSQ_ERR_NO_CONN.rawValue, operation: "publish \(command.topic)")
        }
        guard let slot = command.slot, command.owner == ObjectIdentifier(self) else {
            _ = try handOver(topic: command.topic, payload: payload, qos: command.qos, retain: command.retain, bounded: !safe, slot: -1)
            return
        }
        // Read before the hand-over: an emergency safe value published from now on may precede it.
        let emergenciesBefore = command.emergencies.load(ordering: .sequentiallyConsistent)
        try command.state.withLock { state in
            if state.waiting != nil {
                state.waiting = nil
                counters.superseded.add(1, ordering: .relaxed)
            }
            let outstanding = ledger.withLock { $0.outstanding(slot: slot) }
            if safe {
                if state.lastSafe && state.lastMid != 0 && outstanding == state.lastMid
                    && state.lastConnects == counters.connects.load(ordering: .acquiring) {
                    counters.safeValuesAlreadyLast.add(1, ordering: .relaxed)
                    return
                }
                try handOver(payload, on: command, slot: slot, safe: true, state: &state)
                return
            }
            // Checked under the topic's lock: the network thread drops what waits after it clears
            // `connected`, so nothing given while it was set survives the connection.
            guard isConnected else {
                counters.publishFailures.add(1, ordering: .relaxed)
                throw MQTTError(code: MOSQ_ERR_NO_CONN.rawValue, operation: "publish \(command.topic)")
            }
            if state.unconfirmed {
                state.unconfirmed = false
                counters.publishFailures.add(1, ordering: .relaxed)
                throw MQTTError(code: MQTTError.commandUnconfirmedCode, operation: "publish \(command.topic)")
            }
            if outstanding != 0 {
                state.waiting = .init(payload: payload, emergenciesBefore: emergenciesBefore, approval: approval)
                return
            }
            try handOver(payload, on: command, slot: slot, safe: false, state: &state)
            try followEmergency(on: command, slot: slot, since: emergenciesBefore, state: &state)
        }
    }

    /// Under the topic's lock.
    private func handOver(_ payload: [UInt8], on command: MQTTCommandTopic, slot: Int, safe: Bool, state: inout MQTTCommandTopic.State) throws {
        let connects = counters.connects.load(ordering: .acquiring)
        let mid = try handOver(topic: command.topic, payload: payload, qos: command.qos, retain: command.retain, bounded: !safe, slot: slot)
        state.lastMid = mid ?? 0
        state.lastSafe = safe
        state.lastConnects = connects
    }

    /// Under the topic's lock, after a command went out: an emergency safe value published on the
    /// topic meanwhile may have gone before it, so the safe value follows it.
    private func followEmergency(on command: MQTTCommandTopic, slot: Int, since before: UInt64, state: inout MQTTCommandTopic.State) throws {
        guard command.emergencies.load(ordering: .sequentiallyConsistent) != before else { return }
        try handOver(command.safePayload, on: command, slot: slot, safe: true, state: &state)
    }

    /// Network thread, after a turn of the loop in which a command topic's outstanding message was
    /// confirmed: the commands waiting for it go out (refused at the bound like any command).
    private func handOverWaitingCommands() {
        guard commandSlotFreed.exchange(false, ordering: .acquiringAndReleasing), isConnected else { return }
        let topics = commandTopics.withLock { $0 }
        var i = 0
        while i < topics.count {
            let command = topics[i]
            i += 1
            guard let slot = command.slot else { continue }
            command.state.withLock { state in
                guard let waiting = state.waiting, ledger.withLock({ $0.outstanding(slot: slot) }) == 0 else { return }
                state.waiting = nil
                // An emergency safe value went out after it was given: it is stale.
                guard command.emergencies.load(ordering: .sequentiallyConsistent) == waiting.emergenciesBefore else {
                    counters.superseded.add(1, ordering: .relaxed)
                    return
                }
                // Its approval, read anew: the wait may have outlasted it (a broker that stalled),
                // or a latch or reset may have come since.
                if let approval = waiting.approval, approval.hasLapsed {
                    counters.expired.add(1, ordering: .relaxed)
                    return
                }
                // A failure (the link gone meanwhile, the bound) is counted and the command lost;
                // the next command or safe value on the topic is handed over as usual.
                do {
                    try handOver(waiting.payload, on: command, slot: slot, safe: false, state: &state)
                    try followEmergency(on: command, slot: slot, since: waiting.emergenciesBefore, state: &state)
                } catch {}
            }
        }
    }

    /// Network thread, once the connection is gone: a command waiting would be stale after it. A
    /// stuck channel not reported yet is forgotten: the lost link fails its next command anyway.
    private func dropWaitingCommands() {
        let topics = commandTopics.withLock { $0 }
        var i = 0
        while i < topics.count {
            let command = topics[i]
            i += 1
            command.state.withLock { state in
                state.unconfirmed = false
                guard state.waiting != nil else { return }
                state.waiting = nil
                counters.superseded.add(1, ordering: .relaxed)
            }
        }
    }

    /// Network thread, connected: a command topic whose outstanding message has waited for its
    /// confirmation longer than the limit since its hand-over and since the latest connect (when
    /// libmosquitto sent it again) will not see it. It is given up — the slot freed, the command
    /// waiting dropped — and the topic marked, so that its next command is refused: the back end
    /// fails and the guard stops the machine, where the channel would otherwise take every
    /// command and send none (a heater left at its last duty).
    private func expireUnconfirmedCommands(now: Int64) {
        guard isConnected else { return }
        let cutoff = now &- options.commandConfirmationLimit
        guard lastConnectAt.load(ordering: .acquiring) < cutoff else { return }
        let topics = commandTopics.withLock { $0 }
        var i = 0
        while i < topics.count {
            let command = topics[i]
            i += 1
            guard let slot = command.slot, ledger.withLock({ $0.outstanding(slot: slot, handedOverBefore: cutoff) }) else { continue }
            // Under the topic's lock, as every hand-over on it: checked again there.
            command.state.withLock { state in
                guard ledger.withLock({ $0.expireOutstanding(slot: slot, handedOverBefore: cutoff) }) else { return }
                counters.unconfirmedCommands.add(1, ordering: .relaxed)
                state.unconfirmed = true
                state.lastMid = 0
                if state.waiting != nil {
                    state.waiting = nil
                    counters.superseded.add(1, ordering: .relaxed)
                }
            }
        }
    }

    /// For the supervisor (`MQTTBackend.emergencySafeState`): `publish` without any wait of ours.
    /// The message goes to libmosquitto first and is accounted afterwards without waiting for the
    /// ledger's lock (`LedgerLock.recordWithoutWaiting`), which the network thread may hold while
    /// it sweeps. Not refused by `maxQueuedMessages` or `maxQueuedBytes`: a safe value matters
    /// more than the bound, and an emergency adds one message per channel; it counts against the
    /// bound afterwards. What remains is libmosquitto's own: its internal mutexes, which its network
    /// thread holds for queue operations and non-blocking socket writes, and an allocation (the
    /// copy of the message).
    public func publishEmergency(topic: String, payload: [UInt8], qos: Int, retain: Bool) throws {
        guard isConnected || qos > 0 else {
            counters.publishFailures.add(1, ordering: .relaxed)
            throw MQTTError(code: MOSQ_ERR_NO_CONN.rawValue, operation: "publish \(topic)")
        }
        // In progress until recorded: a confirmation before that waits among the early ones.
        ledger.beginHandOver()
        defer { ledger.endHandOver() }
        var mid: Int32 = 0
        let rc = payload.withUnsafeBytes {
            mosquitto_publish(mosq, &mid, topic, Int32($0.count), $0.baseAddress, Int32(qos), retain)
        }
        // Kept as in `publish`: a QoS 1 or 2 message refused for want of a connection is still
        // in libmosquitto's store.
        guard rc == MOSQ_ERR_SUCCESS.rawValue || (rc == MOSQ_ERR_NO_CONN.rawValue && qos > 0) else {
            counters.publishFailures.add(1, ordering: .relaxed)
            throw MQTTError(code: rc, operation: "publish \(topic)")
        }
        if !ledger.recordWithoutWaiting(mid: mid, qos: qos, bytes: payload.count + topic.utf8.count) {
            counters.emergencyUnaccounted.add(1, ordering: .relaxed)
        }
        counters.published.add(1, ordering: .relaxed)
    }

    /// Messages handed to libmosquitto and not yet written out (QoS 0) or acknowledged (QoS 1, 2).
    public var queuedMessages: Int { ledger.withLock { $0.count } }
    /// Their bytes (payloads and topics).
    public var queuedBytes: Int { ledger.withLock { $0.bytes } }

    /// After a turn of the loop with nothing left to write: every QoS 0 message handed over before
    /// the check has been written (and confirmed, on this thread) or discarded by a reconnect; one
    /// still in the ledger was discarded (a publish that raced the reconnect's clean-up).
    private func sweepWrittenQoS0() {
        let (cutoff, anyQoS0) = ledger.withLock { ($0.nextSettle, $0.qos0Count > 0) }
        guard anyQoS0, !mosquitto_want_write(mosq) else { return }
        var freed = false
        let discarded = ledger.withLock { $0.discardQoS0(settledBefore: cutoff, freedSlot: &freed) }
        if discarded > 0 { counters.discardedAtReconnect.add(UInt64(discarded), ordering: .relaxed) }
        if freed { commandSlotFreed.store(true, ordering: .releasing) }
    }

    /// True when `publish` would refuse a message now (the outgoing queue at its bound): a
    /// publisher can skip building what would only be dropped.
    public var queueIsFull: Bool {
        guard isConnected else { return true }
        let (count, bytes) = ledger.withLock { ($0.count, $0.bytes) }
        return count >= (options.maxQueuedMessages ?? .max) || bytes >= (options.maxQueuedBytes ?? .max)
    }

    private func applySendBuffer() {
        guard let bytes = options.sendBufferBytes else { return }
        let fd = mosquitto_socket(mosq)
        guard fd >= 0 else { return }
        var value = Int32(clamping: bytes)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    /// The connection's socket descriptor now (nil while there is none; libmosquitto holds it once
    /// its connect returned), so that other code of this process can leave this socket alone: the
    /// planner's back ends never take it for their own to reset it (`ExcludedSockets`).
    public var socketDescriptor: Int32? {
        let fd = mosquitto_socket(mosq)
        return fd >= 0 ? fd : nil
    }

    /// The socket's send buffer as the kernel set it (bytes; nil: not connected).
    public var sendBufferSize: Int? {
        let fd = mosquitto_socket(mosq)
        guard fd >= 0 else { return nil }
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &value, &length) == 0 else { return nil }
        return Int(value)
    }

    fileprivate func didPublish(mid: Int32) {
        counters.confirmed.add(1, ordering: .relaxed)
        // Only the flag here, in libmosquitto's callback: the waiting command goes out after the
        // loop's turn, under its topic's lock, which a writer may hold inside mosquitto_publish.
        if ledger.confirm(mid: mid) { commandSlotFreed.store(true, ordering: .releasing) }
    }

    /// True if `topic` matches the subscription `filter` (MQTT wildcard rules, libmosquitto's check).
    public static func matches(filter: String, topic: String) -> Bool {
        var result = false
        return mosquitto_topic_matches_sub(filter, topic, &result) == MOSQ_ERR_SUCCESS.rawValue && result
    }

    // MARK: callbacks (network thread)

    fileprivate func didConnect(_ rc: Int32) {
        connackSeen.store(true, ordering: .relaxed)
        guard rc == 0 else {
            onEvent(.connectRefused(code: rc))
            return
        }
        // Before the re-subscriptions below: their SUBACKs (on this thread) count anew. The count
        // awaited is set before `connected`: the link is up only once every SUBACK is in.
        counters.refusedThisConnection.store(0, ordering: .relaxed)
        let list = subscriptions.withLock { $0 }
        subscriptionsAwaited.store(list.count, ordering: .releasing)
        lastConnectAt.store(rt_monotonic_ns(), ordering: .releasing)
        connected.store(true, ordering: .releasing)
        counters.connects.add(1, ordering: .relaxed)
        for subscription in list {
            // One that cannot be sent is never answered: the link stays down until the next
            // connect (fail closed).
            _ = mosquitto_subscribe(mosq, nil, subscription.filter, Int32(subscription.qos))
        }
        onEvent(.connected)
    }

    /// A SUBACK (granted or refused): one SUBSCRIBE of this connection answered (never below zero).
    fileprivate func didSubscribe() {
        var current = subscriptionsAwaited.load(ordering: .relaxed)
        while current > 0 {
            let (exchanged, original) = subscriptionsAwaited.compareExchange(expected: current, desired: current - 1, ordering: .acquiringAndReleasing)
            if exchanged { break }
            current = original
        }
    }

    fileprivate func didDisconnect(_ rc: Int32) {
        guard connected.exchange(false, ordering: .relaxed) else { return }
        counters.disconnects.add(1, ordering: .relaxed)
        onEvent(.disconnected(code: rc))
    }

    fileprivate func didReceive(_ message: UnsafePointer<mosquitto_message>) {
        let arrival = rt_monotonic_ns()
        let m = message.pointee
        let topic = m.topic.map { String(cString: $0) } ?? ""
        let payload = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(m.payloadlen))) } ?? []
        counters.received.add(1, ordering: .relaxed)
        onMessage(MQTTMessage(topic: topic, payload: payload, qos: Int(m.qos), retained: m.retain, arrival: arrival))
    }

    /// C callbacks are created here, in a nonisolated static context, and find their client
    /// through the user-data pointer (a closure with captured isolation would trap off its actor).
    private nonisolated static func installCallbacks(_ mosq: OpaquePointer) {
        mosquitto_connect_callback_set(mosq) { _, user, rc in
            guard let user else { return }
            Unmanaged<MQTTClient>.fromOpaque(user).takeUnretainedValue().didConnect(rc)
        }
        mosquitto_disconnect_callback_set(mosq) { _, user, rc in
            guard let user else { return }
            Unmanaged<MQTTClient>.fromOpaque(user).takeUnretainedValue().didDisconnect(rc)
        }
        mosquitto_subscribe_callback_set(mosq) { _, user, _, count, granted in
            guard let user else { return }
            let client = Unmanaged<MQTTClient>.fromOpaque(user).takeUnretainedValue()
            // A granted QoS of 0x80 is the broker's refusal (an ACL deny): counted apart, so that a
            // subscription that never happened is not mistaken for one that did.
            var refused = false
            if let granted { for i in 0..<Int(max(0, count)) where granted[i] >= 0x80 { refused = true } }
            if refused {
                client.counters.subscriptionsRefused.add(1, ordering: .relaxed)
                client.counters.refusedThisConnection.add(1, ordering: .relaxed)
            } else {
                client.counters.subscribed.add(1, ordering: .relaxed)
            }
            client.didSubscribe()
        }
        mosquitto_publish_callback_set(mosq) { _, user, mid in
            guard let user else { return }
            Unmanaged<MQTTClient>.fromOpaque(user).takeUnretainedValue().didPublish(mid: mid)
        }
        mosquitto_message_callback_set(mosq) { _, user, message in
            guard let user, let message else { return }
            Unmanaged<MQTTClient>.fromOpaque(user).takeUnretainedValue().didReceive(message)
        }
    }
}

/// Turns an MQTT payload into a number: a bare number ("21.5"), or JSON with a field path
/// ("sensor.temperature", "values[2]").
public enum MQTTPayload {
    public enum ExtractError: Error, Equatable, Sendable {
        case notANumber
        case notJSON
        case missingField(String)
    }

    public static func number(_ payload: [UInt8], fieldPath: String?) -> Result<Double, ExtractError> {
        let text = String(decoding: payload, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let fieldPath, !fieldPath.isEmpty else {
            if let v = Double(text), v.isFinite { return .success(v) }
            if text == "true" || text == "ON" || text == "on" { return .success(1) }
            if text == "false" || text == "OFF" || text == "off" { return .success(0) }
            return .failure(.notANumber)
        }
        guard let root = try? JSONSerialization.jsonObject(with: Data(payload), options: [.fragmentsAllowed]) else {
            return .failure(.notJSON)
        }
        var node: Any? = root
        for part in fieldPath.split(separator: ".") {
            var name = Substring(part)
            var indices: [Int] = []
            while let open = name.lastIndex(of: "["), name.last == "]", let i = Int(name[name.index(after: open)..<name.index(before: name.endIndex)]) {
                indices.insert(i, at: 0)
                name = name[..<open]
            }
            if !name.isEmpty { node = (node as? [String: Any])?[String(name)] }
            for i in indices {
                guard let array = node as? [Any], i >= 0, i < array.count else { return .failure(.missingField(fieldPath)) }
                node = array[i]
            }
            if node == nil { return .failure(.missingField(fieldPath)) }
        }
        if let n = node as? NSNumber { return .success(n.doubleValue) }
        if let s = node as? String, let v = Double(s) { return .success(v) }
        return .failure(.notANumber)
    }
}
