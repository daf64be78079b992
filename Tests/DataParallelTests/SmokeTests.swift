import XCTest
import DataParallel

final class DataParallelSmokeTests: XCTestCase {
    func testModuleLoads() {}
}
