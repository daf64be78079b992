import DataPipeline
import Foundation
import TestSupport
import Training
import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif

/// `swift-dp-train plot`: metrics.jsonl parsing, and the SVG and PNG pictures it draws.
final class PlotTests: XCTestCase {
    /// 3 epochs, 4 logged steps per epoch, an old-style line without `kind` and a line of a kind
    /// this plotter does not know.
    static let metrics: String = {
        var lines: [String] = []
        for epoch in 1...3 {
            for quarter in 1...4 {
                let e = Double(epoch - 1) + Double(quarter) / 4
                lines.append(#"{"kind":"step","step":\#((epoch - 1) * 40 + quarter * 10),"epoch":\#(e),"lr":\#(0.1 / e),"loss":\#(2.5 / (e + 0.5)),"top1":0.5,"images_per_second":150.5}"#)
            }
            let top1 = 0.5 + 0.1 * Double(epoch)
            lines.append(#"{"kind":"epoch","epoch":\#(epoch),"step":\#(epoch * 40),"lr":\#(0.1 / Double(epoch)),"train_loss":\#(2.0 / Double(epoch)),"train_top1":\#(top1 - 0.05),"val_loss":\#(2.2 / Double(epoch)),"val_top1":\#(top1),"val_top5":\#(top1 + 0.2),"val_f1":0.4,"world_size":2}"#)
        }
        lines.append(#"{"kind":"hparams","note":"ignored"}"#)
        return lines.joined(separator: "\n") + "\n"
    }()

    func testParsesEpochAndStepLines() throws {
        let history = try MetricsHistory.parse(Self.metrics, source: "m.jsonl")
        XCTAssertEqual(history.epochs.map(\.epoch), [1, 2, 3])
        XCTAssertEqual(history.steps.count, 12)
        XCTAssertEqual(history.steps[5].epoch, 1.5)
        XCTAssertEqual(history.steps[5].step, 60)
        XCTAssertEqual(history.steps[5].loss!, 2.5 / 2, accuracy: 1e-12)
        XCTAssertEqual(history.epochs[1].valTop1!, 0.7, accuracy: 1e-12)
        XCTAssertEqual(history.epochs[2].valTop5!, 1.0, accuracy: 1e-12)
        XCTAssertEqual(history.epochs[0].step, 40)

        // Older files: no "kind", only the epoch fields of the time; blank lines and CRLF tolerated.
        let old = try MetricsHistory.parse(
            "{\"epoch\":1,\"lr\":0.02,\"train_loss\":1.5,\"train_top1\":0.4,\"val_loss\":1.4,\"val_top1\":0.45,\"val_top5\":0.9,\"val_images\":500}\r\n\n"
            + "{\"epoch\":2,\"lr\":0.01,\"train_loss\":1.1,\"val_loss\":null}\n", source: "old.jsonl")
        XCTAssertEqual(old.epochs.map(\.epoch), [1, 2])
        XCTAssertEqual(old.epochs[1].trainLoss, 1.1)
        XCTAssertNil(old.epochs[1].valLoss)
        XCTAssertNil(old.epochs[1].valTop1)
        XCTAssertTrue(old.steps.isEmpty)

        // A resumed run logs epoch 2's steps again: the later lines replace the earlier ones.
        let resumed = try MetricsHistory.parse("""
            {"kind":"step","epoch":1.5,"loss":1}
            {"kind":"epoch","epoch":1,"val_loss":1}
            {"kind":"step","epoch":2.5,"loss":9}
            {"kind":"step","epoch":1.5,"loss":2}
            {"kind":"step","epoch":2.5,"loss":3}
            """, source: "r.jsonl")
        XCTAssertEqual(resumed.steps.map(\.epoch), [1.5, 2.5])
        XCTAssertEqual(resumed.steps.map(\.loss), [2, 3])
    }

    func testBadMetricsFilesNameTheFileAndLine() throws {
        func error(_ text: String) -> String {
            do {
                _ = try MetricsHistory.parse(text, source: "runs/x/metrics.jsonl")
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(error("{\"epoch\":1}\n\n{\"epoch\":2,\"val_loss\":0.5\n"),
                       "runs/x/metrics.jsonl: line 3: not valid JSON: {\"epoch\":2,\"val_loss\":0.5")
        XCTAssertEqual(error("{\"epoch\":1,\"val_loss\":\"high\"}"), "runs/x/metrics.jsonl: line 1: \"val_loss\" is not a number")
        XCTAssertEqual(error("{\"epoch\":1}\n[1,2]"), "runs/x/metrics.jsonl: line 2: not a JSON object")
        XCTAssertEqual(error("{\"kind\":\"step\",\"loss\":1}"), "runs/x/metrics.jsonl: line 1: no \"epoch\"")
        XCTAssertEqual(error(""), "runs/x/metrics.jsonl: nothing to plot: the file is empty")
        XCTAssertEqual(error("{\"kind\":\"hparams\"}\n"), "runs/x/metrics.jsonl: nothing to plot: it has no epoch or step lines")

        let dir = try makeTemporaryDirectory("sdt-plot")
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("metrics.jsonl").path
        XCTAssertThrowsError(try MetricsHistory.read(path: missing)) { XCTAssertEqual("\($0)", "\(missing): no such file") }
        let history = try MetricsHistory.parse(Self.metrics, source: "m")
        let jpeg = dir.appendingPathComponent("curves.jpg").path
        XCTAssertThrowsError(try CurvePlot(history: history, title: "t").write(to: jpeg)) {
            XCTAssertEqual("\($0)", "\(jpeg): unknown plot format; use .svg or .png")
        }
    }

    func testSVGIsWellFormedWithOnePolylinePerSeries() throws {
        let history = try MetricsHistory.parse(Self.metrics, source: "m")
        let svg = try SVGSummary(CurvePlot(history: history, title: "run <&> 1").svg())
        XCTAssertEqual(svg.width, 1320)
        XCTAssertEqual(svg.pointCounts, [
            "Loss: train (steps)": 12, "Loss: train": 3, "Loss: val": 3,
            "Accuracy (%): train top-1": 3, "Accuracy (%): val top-1": 3, "Accuracy (%): val top-5": 3,
            "Learning rate: learning rate": 12,
        ])
        XCTAssertTrue(svg.texts.contains("run <&> 1"), "the title, escaped in the file, reads back as written")
        XCTAssertTrue(svg.texts.isSuperset(of: ["Loss", "Accuracy (%)", "Learning rate", "epoch", "train (steps)", "val top-5"]))

        // Series with no values are left out rather than drawn empty.
        let epochsOnly = try MetricsHistory.parse("{\"epoch\":1,\"train_loss\":2,\"lr\":0.1}\n{\"epoch\":2,\"train_loss\":1,\"lr\":0.1}",
                                                  source: "m")
        let sparse = try SVGSummary(CurvePlot(history: epochsOnly, title: "t").svg())
        XCTAssertEqual(sparse.pointCounts, ["Loss: train": 2, "Learning rate: learning rate": 2])
        XCTAssertTrue(sparse.texts.contains("no data"), "the accuracy panel says it has nothing")
    }

    func testPNGStructureAndPixels() throws {
        let history = try MetricsHistory.parse(Self.metrics, source: "m")
        let plot = CurvePlot(history: history, title: "run 1")
        let file = plot.png()
        let png = try DecodedPNG(file)  // checks signature, every chunk CRC, zlib header and Adler-32
        XCTAssertEqual(png.chunkTypes, ["IHDR", "IDAT", "IEND"])
        XCTAssertEqual(png.width, 1320)
        XCTAssertEqual(png.height, 470)
        XCTAssertEqual(png.scanlines.count, png.width * png.height * 3 + png.height)
        XCTAssertLessThan(file.count, png.scanlines.count / 10, "flat plots compress at least 10×")

        // libpng, through the image decoder, reads the same pixels.
        let image = try ImageDecoder().decode(file)
        XCTAssertEqual(image.width, png.width)
        XCTAssertEqual(image.height, png.height)
        XCTAssertTrue(image.pixels == png.pixels, "libpng and the test decoder disagree")

        // Where the SVG puts val top-1's points (same layout), the PNG has its colour: each
        // point has a filled marker, so its centre pixel is the series colour itself.
        let svg = try SVGSummary(plot.svg())
        let valTop1 = try XCTUnwrap(svg.polylines["Accuracy (%): val top-1"])
        XCTAssertEqual(valTop1.color, [0xFF, 0x7F, 0x0E])
        for point in valTop1.points {
            let i = 3 * (Int(point.y) * png.width + Int(point.x))
            XCTAssertEqual(Array(png.pixels[i..<i + 3]), valTop1.color, "at \(point)")
        }
        // And inside the accuracy panel, the line between markers is drawn too: halfway between
        // the first two points, the pixel is orange-ish (red high, blue low).
        let mid = ((valTop1.points[0].x + valTop1.points[1].x) / 2, (valTop1.points[0].y + valTop1.points[1].y) / 2)
        let i = 3 * (Int(mid.1) * png.width + Int(mid.0))
        XCTAssertGreaterThan(png.pixels[i], 200)
        XCTAssertLessThan(png.pixels[i + 2], 100)
        // The picture is mostly background: white outside the curves.
        XCTAssertEqual(Array(png.pixels[0..<3]), [255, 255, 255])
    }
}

/// What the tests need from an SVG document, read with Foundation's XMLParser (which fails on
/// anything not well-formed).
private struct SVGSummary {
    struct Polyline {
        var points: [(x: Double, y: Double)]
        var color: [UInt8]
    }

    var width = 0
    var polylines: [String: Polyline] = [:]
    var texts: Set<String> = []
    var pointCounts: [String: Int] { polylines.mapValues(\.points.count) }

    init(_ document: String) throws {
        let delegate = Delegate()
        let parser = XMLParser(data: Data(document.utf8))
        parser.delegate = delegate
        guard parser.parse() else {
            throw TestDecodeError("SVG is not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "?") at line \(parser.lineNumber)")
        }
        if let problem = delegate.problem { throw TestDecodeError(problem) }
        width = delegate.width
        polylines = delegate.polylines
        texts = delegate.texts
    }

    private final class Delegate: NSObject, XMLParserDelegate {
        var width = 0
        var polylines: [String: Polyline] = [:]
        var texts: Set<String> = []
        var problem: String?
        private var text: String?

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            switch name {
            case "svg": width = Int(attributes["width"] ?? "") ?? 0
            case "polyline":
                guard let series = attributes["data-series"] else { return }
                if polylines[series] != nil { problem = "two polylines for \(series)" }
                let points = (attributes["points"] ?? "").split(separator: " ").map { pair in
                    let xy = pair.split(separator: ",").map { Double($0) ?? .nan }
                    return (x: xy[0], y: xy[1])
                }
                let hex = attributes["stroke"] ?? "#000000"
                let color = stride(from: 1, to: 7, by: 2).map { offset -> UInt8 in
                    let start = hex.index(hex.startIndex, offsetBy: offset)
                    return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16) ?? 0
                }
                polylines[series] = Polyline(points: points, color: color)
            case "text": text = ""
            default: break
            }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) { text? += string }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if name == "text", let text { texts.insert(text) }
            text = nil
        }
    }
}
