import Dispatch
import Foundation
import MeshCADaemon
import MeshCAIO
import MeshCATestSupport
import MeshCATransport
import Testing

/// Issue 16: a request's task runs on the event loop of its connection instead of hopping to Swift's cooperative pool
/// and back, and a request resumed by another thread (the ledger's commit) comes back to its own event loop.
@Suite("The gRPC server's tasks run on NIO's event loops", .timeLimit(.minutes(1)))
struct EventLoopTaskExecutorTests {
    /// Resumes the caller from a dispatch queue's thread, as the ledger's group commit does.
    private static func resumeFromAnotherThread() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue(label: "meshca.test.resumer").async { continuation.resume() }
        }
    }

    @Test("Tasks with the preference, and their child tasks, run on an event loop, also after a resumption from another thread")
    func tasksRunOnEventLoops() async throws {
        #expect(EventLoopTaskExecutor.pinnedToCurrentEventLoop == nil, "the test itself does not start on an event loop")
        let onEventLoop = await withTaskExecutorPreference(EventLoopTaskExecutor()) {
            await withTaskGroup(of: [Bool].self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let first = EventLoopTaskExecutor.pinnedToCurrentEventLoop != nil
                        await Self.resumeFromAnotherThread()
                        return [first, EventLoopTaskExecutor.pinnedToCurrentEventLoop != nil]
                    }
                }
                return await group.reduce(into: []) { $0 += $1 }
            }
        }
        #expect(onEventLoop.count == 16)
        #expect(onEventLoop.allSatisfy { $0 })
    }

    @Test("A task pinned to its event loop is resumed on that same event loop's thread")
    func pinnedTaskComesBack() async throws {
        let threads = await withTaskExecutorPreference(EventLoopTaskExecutor()) {
            await withTaskGroup(of: (pthread_t, [pthread_t]).self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let pinned = EventLoopTaskExecutor.pinnedToCurrentEventLoop
                        let own = pthread_self()
                        return await withTaskExecutorPreference(pinned) {
                            var after: [pthread_t] = []
                            for _ in 0..<5 {
                                await Self.resumeFromAnotherThread()
                                after.append(pthread_self())
                            }
                            return (own, after)
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
        }
        #expect(threads.count == 8)
        for (own, after) in threads {
            #expect(after.allSatisfy { pthread_equal($0, own) != 0 }, "a pinned task came back on another thread")
        }
    }
}
