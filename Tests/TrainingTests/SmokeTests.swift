import XCTest
import Training

final class TrainingSmokeTests: XCTestCase {
    func testModuleLoads() {}
}
