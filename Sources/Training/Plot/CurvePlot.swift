import Foundation

/// Training curves from `metrics.jsonl`, the figure the PyTorch transfer-learning tutorial draws
/// with matplotlib: loss, accuracy and learning rate side by side over epochs, the training
/// loss of every logged step as a thin line behind the per-epoch markers.
/// One layout drawn on either canvas: `svg()` for a browser, `png()` for everything else.
public struct CurvePlot {
    public let history: MetricsHistory
    public let title: String

    public init(history: MetricsHistory, title: String) {
        self.history = history
        self.title = title
    }

    public enum Format: String, CaseIterable {
        case svg, png

        /// From the file name's extension (case-insensitive); nil for anything else.
        public init?(path: String) {
            self.init(rawValue: (path as NSString).pathExtension.lowercased())
        }
    }

    public func svg() -> String {
        var canvas = SVGCanvas(width: Layout.width, height: Layout.height)
        draw(on: &canvas)
        return canvas.document
    }

    public func png() -> [UInt8] {
        var canvas = RasterCanvas(width: Layout.width, height: Layout.height)
        draw(on: &canvas)
        return encodePNG(width: canvas.width, height: canvas.height, rgb: canvas.pixels)
    }

    /// Writes SVG or PNG by the extension of `path`, atomically (a viewer never sees half a file).
    public func write(to path: String) throws {
        guard let format = Format(path: path) else {
            throw TrainingError("\(path): unknown plot format; use .svg or .png")
        }
        let bytes = switch format {
        case .svg: Data(svg().utf8)
        case .png: Data(png())
        }
        let directory = (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.isEmpty ? "." : directory, isDirectory: &isDirectory),
              isDirectory.boolValue else {
            throw TrainingError("\(path): cannot write: no directory \(directory)")
        }
        do {
            try bytes.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw TrainingError("\(path): cannot write: \(error.localizedDescription)")
        }
    }

    // MARK: - Layout

    enum Layout {
        static let width = 1320
        static let height = 470
        static let margin = 16.0
        static let titleBaseline = 28.0
        static let plotTop = 74.0
        /// Below the plot: tick labels, the "epoch" label and one row of legend.
        static let plotBottom = Double(height) - 84
        static let panelGap = 24.0
    }

    /// matplotlib's default colour cycle (tab10), so the picture looks as people expect.
    enum Palette {
        static let train = PlotColor(0x1F77B4)
        static let validation = PlotColor(0xFF7F0E)
        static let top5 = PlotColor(0x2CA02C)
        static let learningRate = PlotColor(0x9467BD)
        static let axis = PlotColor(0x333333)
        static let grid = PlotColor(0xE3E3E3)
        static let text = PlotColor(0x222222)
    }

    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
        var color: PlotColor
        var lineWidth: Double
        var markers: Bool
    }

    struct Panel {
        var title: String
        var series: [Series]
        var includesZero = false
        var tickRange: ClosedRange<Double>?
    }

    var panels: [Panel] {
        let epochs = history.epochs, steps = history.steps
        func points(_ value: (MetricsHistory.Epoch) -> Double?, scale: Double = 1) -> [(x: Double, y: Double)] {
            epochs.compactMap { epoch in value(epoch).map { (epoch.epoch, $0 * scale) } }
        }
        let stepLoss = steps.compactMap { step in step.loss.map { (x: step.epoch, y: $0) } }
        let loss = Panel(title: "Loss", series: [
            Series(name: "train (steps)", points: stepLoss, color: Palette.train.withOpacity(0.35), lineWidth: 1, markers: false),
            Series(name: "train", points: points(\.trainLoss), color: Palette.train, lineWidth: 2, markers: true),
            Series(name: "val", points: points(\.valLoss), color: Palette.validation, lineWidth: 2, markers: true),
        ])
        let accuracy = Panel(title: "Accuracy (%)", series: [
            Series(name: "train top-1", points: points(\.trainTop1, scale: 100), color: Palette.train, lineWidth: 2, markers: true),
            Series(name: "val top-1", points: points(\.valTop1, scale: 100), color: Palette.validation, lineWidth: 2, markers: true),
            Series(name: "val top-5", points: points(\.valTop5, scale: 100), color: Palette.top5, lineWidth: 2, markers: true),
        ], tickRange: 0...100)
        // Per-step rates show warm-up and the schedule's shape; per-epoch ones are all older files have.
        let stepRates = steps.compactMap { step in step.lr.map { (x: step.epoch, y: $0) } }
        let rate = stepRates.count >= 2
            ? Series(name: "learning rate", points: stepRates, color: Palette.learningRate, lineWidth: 1.5, markers: false)
            : Series(name: "learning rate", points: points(\.lr), color: Palette.learningRate, lineWidth: 2, markers: true)
        let learningRate = Panel(title: "Learning rate", series: [rate], includesZero: true, tickRange: 0...Double.infinity)
        return [loss, accuracy, learningRate].map { panel in
            var panel = panel
            panel.series.removeAll { $0.points.isEmpty }
            return panel
        }
    }

    /// Shared by the three panels, so epochs line up across them.
    var epochAxis: (minimum: Double, maximum: Double) {
        let xs = history.epochs.map(\.epoch) + history.steps.map(\.epoch)
        var low = xs.min() ?? 0, high = xs.max() ?? 1
        if high - low < 1 {
            low = max(0, high - 1)
            high = low + 1
        }
        return (low, high)
    }

    func draw<Canvas: PlotCanvas>(on canvas: inout Canvas) {
        canvas.fillRect(PlotRect(x: 0, y: 0, width: Double(canvas.width), height: Double(canvas.height)), color: .white)
        canvas.text(title, at: PlotPoint(x: Double(canvas.width) / 2, y: Layout.titleBaseline), anchor: .middle,
                    style: .title, color: Palette.text)
        let panels = panels
        let columnWidth = (Double(canvas.width) - 2 * Layout.margin - Layout.panelGap * Double(panels.count - 1))
            / Double(panels.count)
        for (index, panel) in panels.enumerated() {
            let left = Layout.margin + Double(index) * (columnWidth + Layout.panelGap)
            drawPanel(panel, columnLeft: left, columnWidth: columnWidth, on: &canvas)
        }
    }

    private func drawPanel<Canvas: PlotCanvas>(_ panel: Panel, columnLeft: Double, columnWidth: Double,
                                               on canvas: inout Canvas) {
        let ys = panel.series.flatMap { $0.points.map(\.y) }
        var yMinimum = ys.min() ?? 0, yMaximum = ys.max() ?? 1
        if panel.includesZero { yMinimum = min(0, yMinimum); yMaximum = max(0, yMaximum) }
        // Limits a little beyond the data, as matplotlib does, so no marker sits on the frame;
        // ticks only where the quantity makes sense (no 110% accuracy, no negative rate).
        var yAxis = AxisScale.nice(minimum: yMinimum, maximum: yMaximum, targetTicks: 5, margin: 0.05)
        if let range = panel.tickRange { yAxis.ticks.removeAll { !range.contains($0) } }
        let yLabels = yAxis.ticks.map { yAxis.label($0) }
        let labelWidth = yLabels.map { canvas.textWidth($0, style: .normal) }.max() ?? 0

        // Whole pixels, so the frame and gridlines (drawn on pixel centres) are crisp in the PNG.
        let plotLeft = (columnLeft + labelWidth + 12).rounded()
        let plotRight = (columnLeft + columnWidth - 6).rounded()
        let plot = PlotRect(x: plotLeft, y: Layout.plotTop, width: plotRight - plotLeft, height: Layout.plotBottom - Layout.plotTop)

        let epochs = epochAxis
        var xAxis = AxisScale.nice(minimum: epochs.minimum, maximum: epochs.maximum,
                                   targetTicks: max(2, Int(plot.width / 55)), margin: 0.04)
        if epochs.maximum - epochs.minimum >= 2 && xAxis.tickStep < 1 {
            // Whole epochs only once there are a few of them: "1.5" as an epoch tick reads oddly.
            let step = 1.0
            xAxis.tickStep = step
            xAxis.ticks = Array(stride(from: (xAxis.lower / step).rounded(.up) * step, through: xAxis.upper, by: step))
        }
        func position(_ x: Double, _ y: Double) -> PlotPoint {
            PlotPoint(x: plot.minX + xAxis.fraction(x) * plot.width, y: plot.maxY - yAxis.fraction(y) * plot.height)
        }

        canvas.text(panel.title, at: PlotPoint(x: plot.minX + plot.width / 2, y: plot.minY - 14), anchor: .middle,
                    style: .title, color: Palette.text)

        // Gridlines and tick labels first, the frame and data over them.
        let crisp = { (value: Double) in value.rounded(.down) + 0.5 }
        for (tick, label) in zip(yAxis.ticks, yLabels) {
            let y = crisp(position(xAxis.lower, tick).y)
            canvas.polyline([PlotPoint(x: plot.minX, y: y), PlotPoint(x: plot.maxX, y: y)], color: Palette.grid, lineWidth: 1, seriesName: nil)
            canvas.polyline([PlotPoint(x: plot.minX - 4, y: y), PlotPoint(x: plot.minX, y: y)], color: Palette.axis, lineWidth: 1, seriesName: nil)
            canvas.text(label, at: PlotPoint(x: plot.minX - 7, y: (y + Double(BitmapFont.capHeight) / 2).rounded()),
                        anchor: .end, style: .normal, color: Palette.text)
        }
        var lastLabelRight = -Double.infinity
        for tick in xAxis.ticks {
            let x = crisp(position(tick, yAxis.lower).x)
            canvas.polyline([PlotPoint(x: x, y: plot.minY), PlotPoint(x: x, y: plot.maxY)], color: Palette.grid, lineWidth: 1, seriesName: nil)
            canvas.polyline([PlotPoint(x: x, y: plot.maxY), PlotPoint(x: x, y: plot.maxY + 4)], color: Palette.axis, lineWidth: 1, seriesName: nil)
            let label = xAxis.label(tick)
            let halfWidth = canvas.textWidth(label, style: .normal) / 2
            guard x - halfWidth > lastLabelRight + 6 else { continue }  // never let tick labels touch
            canvas.text(label, at: PlotPoint(x: x, y: plot.maxY + 18), anchor: .middle, style: .normal, color: Palette.text)
            lastLabelRight = x + halfWidth
        }
        canvas.text("epoch", at: PlotPoint(x: plot.minX + plot.width / 2, y: plot.maxY + 36), anchor: .middle,
                    style: .normal, color: Palette.text)
        let frame = PlotRect(x: plot.minX + 0.5, y: plot.minY + 0.5, width: plot.width - 1, height: plot.height - 1)
        canvas.polyline([PlotPoint(x: frame.minX, y: frame.minY), PlotPoint(x: frame.maxX, y: frame.minY),
                         PlotPoint(x: frame.maxX, y: frame.maxY), PlotPoint(x: frame.minX, y: frame.maxY),
                         PlotPoint(x: frame.minX, y: frame.minY)], color: Palette.axis, lineWidth: 1, seriesName: nil)

        if panel.series.isEmpty {
            canvas.text("no data", at: PlotPoint(x: plot.minX + plot.width / 2, y: plot.minY + plot.height / 2),
                        anchor: .middle, style: .normal, color: Palette.axis)
        }
        var drawn = panel.series
        for index in drawn.indices {
            let points = thinned(drawn[index].points.map { position($0.x, $0.y) })
            canvas.polyline(points, color: drawn[index].color, lineWidth: drawn[index].lineWidth,
                            seriesName: "\(panel.title): \(drawn[index].name)")
            // Markers closer than a few pixels merge into a blob; the line alone says more then.
            drawn[index].markers = drawn[index].markers && Double(points.count) <= plot.width / 12
            if drawn[index].markers {
                for point in points { canvas.fillCircle(center: point, radius: 3.5, color: drawn[index].color) }
            }
        }
        if drawn.count > 1 { drawLegend(drawn, centeredIn: plot, on: &canvas) }
    }

    /// One row under the axis label: a legend there never hides a curve.
    private func drawLegend<Canvas: PlotCanvas>(_ series: [Series], centeredIn plot: PlotRect, on canvas: inout Canvas) {
        let sampleLength = 24.0, sampleGap = 6.0, entryGap = 22.0
        let widths = series.map { sampleLength + sampleGap + canvas.textWidth($0.name, style: .normal) }
        var x = (plot.minX + plot.width / 2 - (widths.reduce(0, +) + entryGap * Double(series.count - 1)) / 2).rounded()
        let baseline = plot.maxY + 62
        let lineY = baseline - Double(BitmapFont.capHeight) / 2
        for (entry, width) in zip(series, widths) {
            canvas.polyline([PlotPoint(x: x, y: lineY), PlotPoint(x: x + sampleLength, y: lineY)],
                            color: entry.color, lineWidth: max(entry.lineWidth, 2), seriesName: nil)
            if entry.markers { canvas.fillCircle(center: PlotPoint(x: x + sampleLength / 2, y: lineY), radius: 3.5, color: entry.color) }
            canvas.text(entry.name, at: PlotPoint(x: x + sampleLength + sampleGap, y: baseline), anchor: .start,
                        style: .normal, color: Palette.text)
            x += width + entryGap
        }
    }

    /// Thousands of logged steps squeezed into a few hundred pixels: per pixel column, keep the
    /// first, lowest, highest and last point, which draws the same band without the weight.
    private func thinned(_ points: [PlotPoint]) -> [PlotPoint] {
        guard points.count > 2 * Layout.width else { return points }
        var result: [PlotPoint] = []
        var column: [PlotPoint] = []
        func flush() {
            guard let first = column.first, let last = column.last else { return }
            let low = column.max { $0.y < $1.y }!, high = column.min { $0.y < $1.y }!
            var kept = [first]
            for point in [low, high, last] where point != kept.last { kept.append(point) }
            result += kept
            column.removeAll(keepingCapacity: true)
        }
        for point in points {
            if let first = column.first, Int(point.x) != Int(first.x) { flush() }
            column.append(point)
        }
        flush()
        return result
    }
}
