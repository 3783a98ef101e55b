import Foundation
import MeshCACore
import Testing

@Suite("When an agent renews and retries")
struct RenewalScheduleTests {
    let received = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("Renewal is at half the real lifetime, spread by the jitter", arguments: [(-1.0, 0.45), (0.0, 0.5), (1.0, 0.55)])
    func halfLife(random: Double, fraction: Double) throws {
        let schedule = try RenewalSchedule(graceRatio: 0.5, jitter: 0.1)
        let notAfter = received.addingTimeInterval(86_400)
        let at = schedule.renewalTime(receivedAt: received, notAfter: notAfter, random: random)
        #expect(abs(at.timeIntervalSince(received) - 86_400 * fraction) < 0.001)
    }

    @Test("A shorter lifetime than asked for moves renewal earlier")
    func actualLifetime() throws {
        let at = try RenewalSchedule().renewalTime(receivedAt: received, notAfter: received.addingTimeInterval(600), random: 0)
        #expect(at == received.addingTimeInterval(300))
    }

    @Test("Backoff doubles up to its cap and never reaches past the certificate's expiry")
    func backoff() throws {
        let schedule = try RenewalSchedule(initialBackoff: .seconds(1), maximumBackoff: .seconds(60))
        #expect(schedule.backoff(attempt: 0, random: 1, now: received) == .seconds(1))
        #expect(schedule.backoff(attempt: 3, random: 1, now: received) == .seconds(8))
        #expect(schedule.backoff(attempt: 20, random: 1, now: received) == .seconds(60))
        #expect(schedule.backoff(attempt: 20, random: 0, now: received) == .seconds(30))
        let soon = received.addingTimeInterval(10)
        #expect(schedule.backoff(attempt: 20, random: 1, now: received, deadline: soon) == .seconds(5))
    }

    @Test("Bad ratios are refused", arguments: [(0.0, 0.1), (1.0, 0.1), (0.5, 1.0), (0.5, -0.1)])
    func refuses(ratio: Double, jitter: Double) {
        #expect(throws: IssuanceError.self) { _ = try RenewalSchedule(graceRatio: ratio, jitter: jitter) }
    }

    @Test("The outage budget is the time left on the certificate")
    func outageBudget() {
        #expect(RenewalSchedule.outageBudget(notAfter: received.addingTimeInterval(3600), now: received) == .seconds(3600))
        #expect(RenewalSchedule.outageBudget(notAfter: received, now: received.addingTimeInterval(5)) == .zero)
    }
}
