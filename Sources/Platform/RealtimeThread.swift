import CRealtime
import Glibc

/// A joinable POSIX thread running one closure. Created from a nonisolated context and given its
/// body through `Unmanaged`, so the body never inherits main-actor isolation (which would trap at
/// run time when it runs on this thread).
public final class RealtimeThread: @unchecked Sendable {
    // @unchecked: `handle` is written once in init and read by join().
    private var handle: pthread_t
    private var joined = false

    private final class Body {
        let name: String
        let run: @Sendable () -> Void
        init(_ name: String, _ run: @escaping @Sendable () -> Void) { self.name = name; self.run = run }
    }

    public struct StartError: Error, CustomStringConvertible {
        public let code: Int32
        public var description: String { "pthread_create failed: errno \(code)" }
    }

    /// `stackBytes`: every robotd thread has an explicit stack (not glibc's 8 MiB default): each is
    /// locked whole under mlockall, and 256 KiB is several times what our handlers and readers use.
    public nonisolated init(name: String, stackBytes: Int = 256 * 1024, body: @escaping @Sendable () -> Void) throws {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, stackBytes)
        let context = Unmanaged.passRetained(Body(name, body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, &attributes, { raw in
            guard let raw else { return nil }
            let body = Unmanaged<Body>.fromOpaque(raw).takeRetainedValue()
            rt_name_current_thread(body.name)
            body.run()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw StartError(code: rc)
        }
        handle = thread
    }

    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(handle, nil)
    }
}
