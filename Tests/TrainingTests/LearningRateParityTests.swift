import Foundation
import Training
import XCTest

/// Every schedule kind, with and without warm-up, against the learning rates real
/// torch.optim.lr_scheduler schedulers gave each iteration of a 7-steps × 10-epochs run
/// (Fixtures/lr/make_lr_fixtures.py documents how each setting maps onto torch's classes).
final class LearningRateParityTests: XCTestCase {
    struct Fixture: Decodable {
        struct Case: Decodable {
            let name: String
            let kind: String
            let warmup_epochs: Float
            let warmup_start_factor: Float
            let milestones: [Int]
            let step_size: Int
            let gamma: Float
            let min_lr: Float
            let pct_start: Float
            let div_factor: Float
            let final_div_factor: Float
            let lr: [Double]
        }
        let steps_per_epoch: Int
        let epochs: Int
        let base_lr: Float
        let cases: [Case]
    }

    static let fixturePath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/lr/lr_fixtures.json")

    func testEveryIterationMatchesTorch() throws {
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: Self.fixturePath))
        XCTAssertEqual(fixture.cases.count, 12)
        XCTAssertEqual(Set(fixture.cases.map(\.kind)), Set(LearningRateSchedule.Kind.allCases.map(\.rawValue)))
        for c in fixture.cases {
            let schedule = LearningRateSchedule(
                kind: try LearningRateSchedule.Kind.parse(c.kind), baseLR: fixture.base_lr,
                stepsPerEpoch: fixture.steps_per_epoch, epochs: fixture.epochs, warmupEpochs: c.warmup_epochs,
                warmupStartFactor: c.warmup_start_factor, milestones: c.milestones, stepSize: c.step_size,
                gamma: c.gamma, minLR: c.min_lr, pctStart: c.pct_start, divFactor: c.div_factor,
                finalDivFactor: c.final_div_factor)
            XCTAssertEqual(c.lr.count, schedule.totalSteps, c.name)
            var worst = 0.0
            for (step, reference) in c.lr.enumerated() {
                let ours = Double(schedule.learningRate(atStep: step))
                let relative = abs(ours - reference) / abs(reference)
                worst = max(worst, relative)
                XCTAssertLessThanOrEqual(relative, 1e-6, "\(c.name) iteration \(step): ours \(ours), torch \(reference)")
            }
            print("\(c.name): max relative difference from torch \(worst)")
        }
    }
}
