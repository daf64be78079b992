import Training
import DataPipeline
import XCTest

final class LearningRateScheduleTests: XCTestCase {
    func testCosineStartsAtBaseAndEndsNearZero() {
        let s = LearningRateSchedule(baseLR: 0.1, totalSteps: 100, warmupSteps: 0, cosine: true)
        XCTAssertEqual(s.learningRate(atStep: 0), 0.1, accuracy: 1e-7)
        XCTAssertEqual(s.learningRate(atStep: 50), 0.05, accuracy: 1e-6)
        XCTAssertLessThan(s.learningRate(atStep: 99), 0.001)
        XCTAssertEqual(s.learningRate(atStep: 100), 0, accuracy: 1e-7)
    }

    func testWarmupIsLinearThenCosine() {
        let s = LearningRateSchedule(baseLR: 0.4, totalSteps: 110, warmupSteps: 10, cosine: true)
        XCTAssertEqual(s.learningRate(atStep: 0), 0.04, accuracy: 1e-6)
        XCTAssertEqual(s.learningRate(atStep: 9), 0.4, accuracy: 1e-6)
        XCTAssertEqual(s.learningRate(atStep: 10), 0.4, accuracy: 1e-6)
        XCTAssertEqual(s.learningRate(atStep: 60), 0.2, accuracy: 1e-6)
    }

    func testConstant() {
        let s = LearningRateSchedule(baseLR: 0.3, totalSteps: 10, warmupSteps: 0, cosine: false)
        XCTAssertEqual(s.learningRate(atStep: 7), 0.3)
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

