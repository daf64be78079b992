import XCTest
import DataPipeline

final class DataPipelineSmokeTests: XCTestCase {
    func testModuleLoads() {}
}
