import Training
import DataPipeline
import XCTest

/// Rules the fixture cannot show (parsing, the former initializer, the ends of a run); the
/// torch parity of every kind is in LearningRateParityTests.
final class LearningRateScheduleTests: XCTestCase {
    func testCosineStartsAtBaseAndEndsNearZero() {
        let s = LearningRateSchedule(baseLR: 0.1, totalSteps: 100, warmupSteps: 0, cosine: true)
        XCTAssertEqual(s.learningRate(atStep: 0), 0.1, accuracy: 1e-7)
        XCTAssertEqual(s.learningRate(atStep: 50), 0.05, accuracy: 1e-6)
        XCTAssertLessThan(s.learningRate(atStep: 99), 0.001)
        XCTAssertEqual(s.learningRate(atStep: 100), 0, accuracy: 1e-7)
    }

    /// Warm-up is torchvision's LinearLR per iteration: from 0.01·base at iteration 0 to base
    /// at iteration W, where the cosine starts (it used to be base·(k + 1)/W).
    func testWarmupIsLinearFromStartFactorThenCosine() {
        let s = LearningRateSchedule(baseLR: 0.4, totalSteps: 110, warmupSteps: 10, cosine: true)
        XCTAssertEqual(s.learningRate(atStep: 0), 0.004, accuracy: 1e-7)
        XCTAssertEqual(s.learningRate(atStep: 5), 0.4 * (0.01 + 0.99 * 0.5), accuracy: 1e-6)
        XCTAssertEqual(s.learningRate(atStep: 9), 0.4 * (0.01 + 0.99 * 0.9), accuracy: 1e-6)
        XCTAssertEqual(s.learningRate(atStep: 10), 0.4, accuracy: 1e-7)
        XCTAssertEqual(s.learningRate(atStep: 60), 0.2, accuracy: 1e-6)
    }

    func testConstant() {
        let s = LearningRateSchedule(baseLR: 0.3, totalSteps: 10, warmupSteps: 0, cosine: false)
        XCTAssertEqual(s.learningRate(atStep: 7), 0.3)
    }

    func testWarmupEpochsRoundToWholeIterations() {
        let s = LearningRateSchedule(kind: .cosine, baseLR: 1, stepsPerEpoch: 10, epochs: 5, warmupEpochs: 0.3)
        XCTAssertEqual(s.warmupSteps, 3)
    }

    /// onecycle has its own warm-up phase, so a separate one is ignored.
    func testOneCycleIgnoresWarmup() {
        let plain = LearningRateSchedule(kind: .onecycle, baseLR: 0.1, stepsPerEpoch: 7, epochs: 10)
        let warmed = LearningRateSchedule(kind: .onecycle, baseLR: 0.1, stepsPerEpoch: 7, epochs: 10, warmupEpochs: 2)
        XCTAssertEqual(warmed.warmupSteps, 0)
        for step in 0..<70 { XCTAssertEqual(plain.learningRate(atStep: step), warmed.learningRate(atStep: step)) }
    }

    /// Past the last iteration: no rise (cosine holds minLR, onecycle its final value), no
    /// failure; step keeps decaying as torch's StepLR would.
    func testPastTheEndNothingRisesOrFails() {
        for kind in LearningRateSchedule.Kind.allCases {
            let s = LearningRateSchedule(kind: kind, baseLR: 0.1, stepsPerEpoch: 7, epochs: 10, warmupEpochs: 1,
                                         milestones: [3, 6], stepSize: 2, minLR: 1e-3)
            let last = s.learningRate(atStep: s.totalSteps - 1)
            for extra in [0, 1, 50, 1000] {
                let lr = s.learningRate(atStep: s.totalSteps + extra)
                XCTAssertTrue(lr.isFinite && lr >= 0 && lr <= last, "\(kind) at end + \(extra): \(lr)")
            }
        }
        let cosine = LearningRateSchedule(kind: .cosine, baseLR: 0.1, stepsPerEpoch: 7, epochs: 10, minLR: 1e-3)
        XCTAssertEqual(cosine.learningRate(atStep: 500), 1e-3)
    }

    func testKindsParseAndUnknownNamesListTheValidOnes() throws {
        for kind in LearningRateSchedule.Kind.allCases {
            XCTAssertEqual(try LearningRateSchedule.Kind.parse(kind.rawValue), kind)
        }
        XCTAssertEqual(try LearningRateSchedule.Kind.parse("Cosine"), .cosine)
        XCTAssertThrowsError(try LearningRateSchedule.Kind.parse("linear")) { error in
            XCTAssertEqual("\(error)", "unknown --lr-schedule 'linear': use one of constant, multistep, step, cosine, onecycle")
        }
    }

    func testMilestonesParse() throws {
        XCTAssertEqual(try LearningRateSchedule.parseMilestones("30,60"), [30, 60])
        XCTAssertEqual(try LearningRateSchedule.parseMilestones(" 5 , 8"), [5, 8])
        for bad in ["", "30,", "a,2", "-1"] {
            XCTAssertThrowsError(try LearningRateSchedule.parseMilestones(bad), bad)
        }
    }
}

final class TransformPresetTests: XCTestCase {
    /// auto: torchvision's ImageNet recipe from 128 px up (Resize 256 + CenterCrop 224 at 224),
    /// the pad-and-crop recipe below (validation at the native size).
    func testPresetsResolveLikeTheRecipes() throws {
        var config = TrainConfig()
        config.imageSize = 64
        XCTAssertEqual(try config.trainTransform().kind, .padCrop)
        XCTAssertEqual(try config.evalResize(), 64)
        config.imageSize = 224
        XCTAssertEqual(try config.trainTransform().kind, .randomResizedCrop)
        XCTAssertEqual(try config.evalResize(), 256)
        config.evalTransformPreset = "native"
        XCTAssertEqual(try config.evalResize(), 224)
        config.trainTransformPreset = "tiny-imagenet"
        config.hflip = 0
        XCTAssertEqual(try config.trainTransform(), TrainTransform(kind: .padCrop, flipProbability: 0))
        config.trainTransformPreset = "bogus"
        XCTAssertThrowsError(try config.trainTransform())
    }
}

