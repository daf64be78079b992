import Kernels
import NN
import XCTest

final class StateDictTests: XCTestCase {
    /// OHWI in memory ↔ OIHW in files: element (o, i, h, w) must land where PyTorch expects it.
    func testConvLayoutConversionRoundTrips() {
        let store = ParameterStore()
        let p = store.addParameter("c.weight", shape: [2, 3, 2, 2], layout: .convOHWI, initializer: .constant(0))
        store.finalize(seed: 0)
        let (o, i, h, w) = (2, 3, 2, 2)
        // Memory is [o][h][w][i]; fill each element with its OIHW code.
        for oo in 0..<o { for hh in 0..<h { for ww in 0..<w { for ii in 0..<i {
            store.value(p)[((oo * h + hh) * w + ww) * i + ii] = Float(oo * 1000 + ii * 100 + hh * 10 + ww)
        } } } }
        let oihw = StateDict.pytorchLayout(store.value(p), entry: p)
        for oo in 0..<o { for ii in 0..<i { for hh in 0..<h { for ww in 0..<w {
            XCTAssertEqual(oihw[((oo * i + ii) * h + hh) * w + ww], Float(oo * 1000 + ii * 100 + hh * 10 + ww))
        } } } }
        let back = UnsafeMutablePointer<Float>.allocate(capacity: p.count)
        defer { back.deallocate() }
        StateDict.fromPytorchLayout(oihw, entry: p, into: back)
        for k in 0..<p.count { XCTAssertEqual(back[k], store.value(p)[k]) }
    }

    func testLoadIsStrict() throws {
        let a = try ClassifierModel(architecture: "plain_convnet", numClasses: 3, stem: .small, seed: 1)
        let b = try ClassifierModel(architecture: "plain_convnet", numClasses: 3, stem: .small, seed: 2)
        var records = Dictionary(uniqueKeysWithValues: StateDict.records(of: a.store).map { ($0.name, $0) })
        try StateDict.load(records, into: b.store, source: "a")
        for k in 0..<a.store.parameterCount { XCTAssertEqual(a.store.values[k], b.store.values[k]) }

        records["extra.weight"] = SafeTensorRecord(name: "extra.weight", dtype: .f32, shape: [1], floats: [1])
        records.removeValue(forKey: "conv2.bias")
        records["fc.weight"] = SafeTensorRecord(name: "fc.weight", dtype: .f32, shape: [3], floats: [1, 2, 3])
        let c = try ClassifierModel(architecture: "plain_convnet", numClasses: 3, stem: .small, seed: 3)
        let untouched = Array(UnsafeBufferPointer(start: c.store.values, count: c.store.parameterCount))
        XCTAssertThrowsError(try StateDict.load(records, into: c.store, source: "w.safetensors")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("w.safetensors: "), text)
            XCTAssertTrue(text.contains("missing conv2.bias"), text)
            XCTAssertTrue(text.contains("unexpected extra.weight"), text)
            XCTAssertTrue(text.contains("fc.weight"), text)
        }
        // conv1.weight matched, but nothing may be written when the load as a whole fails.
        XCTAssertEqual(Array(UnsafeBufferPointer(start: c.store.values, count: c.store.parameterCount)), untouched)
    }
}
