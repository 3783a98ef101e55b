import NIOCore
import NIOPosix

/// A Swift concurrency task executor that runs jobs on the event loops of a NIO group, staying on the event loop
/// that enqueues them.
///
/// The daemon makes it the task executor preference of the gRPC server's tasks: a request's task is resumed by the
/// event loop that read its request and then runs there, instead of being handed to Swift's cooperative pool and its
/// response handed back to the event loop (each hand-off a futex wake-up and a context switch on both sides).
/// Connections are spread over the group's event loops, so the requests of many connections use all cores. A job
/// enqueued from a thread outside the group goes to the group's next event loop; ``pinnedToCurrentEventLoop`` keeps
/// one request on its own event loop instead.
///
/// Only tasks that inherit the preference run here: actors keep their own executors. Work that can wait for long
/// (SQLite's fsync, another process's lock) runs on threads of its own, not in these jobs.
public final class EventLoopTaskExecutor: TaskExecutor {
    private let group: MultiThreadedEventLoopGroup

    /// Runs jobs on the event loops of `group`.
    public init(group: MultiThreadedEventLoopGroup = .singleton) {
        self.group = group
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        // `any()` is the calling thread's own event loop when it is one of the group's, else the next one.
        group.any().execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }

    /// An executor for the event loop running the caller, or nil when the caller does not run on an event loop: as a
    /// task executor preference it brings the task back to that event loop whoever resumes it (a ledger commit
    /// resumes its callers from the ledger's own thread), so the response is written without another hand-off.
    public static var pinnedToCurrentEventLoop: (any TaskExecutor)? {
        MultiThreadedEventLoopGroup.currentEventLoop.map(PinnedEventLoopExecutor.init(loop:))
    }
}

/// Runs every job on one event loop.
///
/// As the task executor preference of work that waits on one NIO channel (a PostgreSQL connection's queries), it
/// keeps each resumption on the channel's own event loop: an answer resumes the task where it arrived, and the next
/// request is written from there, instead of two thread wake-ups per round trip.
public final class PinnedEventLoopExecutor: TaskExecutor {
    let loop: any EventLoop

    /// Runs jobs on `loop`.
    public init(loop: any EventLoop) {
        self.loop = loop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
