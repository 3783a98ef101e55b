import MeshCATestSupport
import Testing

/// The suites that use SoftHSM's module inside this process, one test at a time.
///
/// The module reads its configuration once per process and keeps global state. In one full run on a loaded machine
/// every in-process HSM test failed at the same moment with "No initialized token" while the recovery test was
/// closing every session and finalizing the module (through a private copy of the library, which evidently did not
/// isolate it). So these suites run one test at a time; the tests whose `meshca` runs as a child process with a token
/// of its own stay parallel.
@Suite("In-process SoftHSM, one test at a time", .serialized, .enabled(if: SoftHSM.isAvailable, .init(rawValue: SoftHSM.unavailableReason)))
struct InProcessSoftHSM {}
