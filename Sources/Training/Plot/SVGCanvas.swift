import Foundation

/// Builds an SVG document; `document` is the finished file's text.
struct SVGCanvas: PlotCanvas {
    let width: Int
    let height: Int
    private var elements: [String] = []

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    var document: String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" \
        font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
        \(elements.joined(separator: "\n"))
        </svg>

        """
    }

    mutating func fillRect(_ rect: PlotRect, color: PlotColor) {
        elements.append("<rect x=\"\(number(rect.x))\" y=\"\(number(rect.y))\" width=\"\(number(rect.width))\" "
            + "height=\"\(number(rect.height))\" \(paint("fill", color))/>")
    }

    mutating func polyline(_ points: [PlotPoint], color: PlotColor, lineWidth: Double, seriesName: String?) {
        guard !points.isEmpty else { return }
        let coordinates = points.map { "\(number($0.x)),\(number($0.y))" }.joined(separator: " ")
        let name = seriesName.map { " data-series=\"\(escaped($0))\"" } ?? ""
        elements.append("<polyline\(name) points=\"\(coordinates)\" fill=\"none\" \(paint("stroke", color)) "
            + "stroke-width=\"\(number(lineWidth))\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>")
    }

    mutating func fillCircle(center: PlotPoint, radius: Double, color: PlotColor) {
        elements.append("<circle cx=\"\(number(center.x))\" cy=\"\(number(center.y))\" r=\"\(number(radius))\" "
            + "\(paint("fill", color))/>")
    }

    mutating func text(_ string: String, at origin: PlotPoint, anchor: TextAnchor, style: TextStyle, color: PlotColor) {
        let anchorName = switch anchor { case .start: "start"; case .middle: "middle"; case .end: "end" }
        let font = switch style { case .normal: "font-size=\"12\""; case .title: "font-size=\"14\" font-weight=\"bold\"" }
        elements.append("<text x=\"\(number(origin.x))\" y=\"\(number(origin.y))\" text-anchor=\"\(anchorName)\" "
            + "\(font) \(paint("fill", color))>\(escaped(string))</text>")
    }

    /// An estimate (the viewer picks the font): average widths of the sans-serif fonts named above,
    /// rounded up so that labels the layout keeps apart stay apart. Close to the raster font's 7 px.
    func textWidth(_ string: String, style: TextStyle) -> Double {
        Double(string.count) * (style == .title ? 8.5 : 7)
    }

    private func paint(_ attribute: String, _ color: PlotColor) -> String {
        let hex = String(format: "#%02x%02x%02x", color.red, color.green, color.blue)
        return color.opacity < 1 ? "\(attribute)=\"\(hex)\" \(attribute)-opacity=\"\(number(color.opacity))\""
                                 : "\(attribute)=\"\(hex)\""
    }

    /// Two decimals are far below a pixel; `%` formatting never switches to exponent notation.
    private func number(_ value: Double) -> String {
        var text = String(format: "%.2f", value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text == "-0" ? "0" : text
    }

    private func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
