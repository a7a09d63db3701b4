import Foundation
import Glibc
import TestSupport
import Testing
@testable import Transports

/// libmosquitto's outgoing queue has no bound for QoS 0; the client's own bound
/// (`maxQueuedMessages`) drops and counts what a stalled broker cannot take.
@Suite("MQTT client: a bounded outgoing queue", .serialized, .enabled(if: MosquittoBroker.isInstalled, "mosquitto is not installed"))
struct MQTTQueueBoundTests {
    @Test func when_the_broker_stops_reading_expect_at_most_the_bound_queued_the_rest_dropped_and_all_confirmed_once_it_reads_again() throws {
        let broker = try MosquittoBroker()
        try broker.start()
        defer {
            if let pid = broker.pid { kill(pid, SIGCONT) }
            broker.stop()
        }
        let client = try MQTTClient(options: MQTTOptions(port: broker.port, clientID: "bound-test-\(getpid())", keepaliveSeconds: 600,
                                                         maxQueuedMessages: 32, sendBufferBytes: 4096)) { _ in }
        try client.start()
        defer { client.stop() }
        #expect(waitUntil { client.isConnected })
        // The kernel doubles SO_SNDBUF and keeps a floor; far below the default (16 KiB or more).
        #expect((client.sendBufferSize ?? .max) <= 16_384)
        let pid = try #require(broker.pid)
        kill(pid, SIGSTOP)
        let payload = [UInt8](repeating: 0x61, count: 2048)
        var refused = 0
        // Until the socket and the broker's receive buffer are full and the bound refuses.
        let deadline = Date().addingTimeInterval(20)
        while client.counters.droppedQueueFull.load(ordering: .relaxed) < 100 && Date() < deadline {
            do { try client.publish(topic: "bound/test", payload: payload) } catch let e as MQTTError {
                #expect(e.code == MQTTError.queueFullCode, "\(e)")
                refused += 1
            }
            #expect(client.queuedMessages <= 32)
            if refused > 0 { usleep(100) }
        }
        let dropped = client.counters.droppedQueueFull.load(ordering: .relaxed)
        #expect(dropped >= 100 && UInt64(refused) == dropped)
        #expect(client.queuedMessages == 32)
        // The broker reads again: everything handed over is written out and confirmed.
        kill(pid, SIGCONT)
        #expect(waitUntil { client.queuedMessages == 0 })
        #expect(client.counters.confirmed.load(ordering: .relaxed) == client.counters.published.load(ordering: .relaxed))
        try client.publish(topic: "bound/test", payload: payload)
    }
}
