/// What the plot layout draws with; `SVGCanvas` and `RasterCanvas` implement it, so the layout
/// (CurvePlot) is written once. Coordinates are pixels, origin top left, y down.
protocol PlotCanvas {
    var width: Int { get }
    var height: Int { get }

    mutating func fillRect(_ rect: PlotRect, color: PlotColor)
    /// `seriesName` marks a data series (SVG keeps it as an attribute; tests find series by it).
    mutating func polyline(_ points: [PlotPoint], color: PlotColor, lineWidth: Double, seriesName: String?)
    mutating func fillCircle(center: PlotPoint, radius: Double, color: PlotColor)
    /// `origin.y` is the baseline; `anchor` says which end (or the middle) of the text is at `origin.x`.
    mutating func text(_ string: String, at origin: PlotPoint, anchor: TextAnchor, style: TextStyle, color: PlotColor)
    /// Width of `string` as `text` will draw it, for the layout to keep labels apart.
    func textWidth(_ string: String, style: TextStyle) -> Double
}

struct PlotPoint: Equatable {
    var x: Double
    var y: Double
}

struct PlotRect: Equatable {
    var x: Double
    var y: Double
    var width: Double
    var height: Double

    var minX: Double { x }
    var maxX: Double { x + width }
    var minY: Double { y }
    var maxY: Double { y + height }
}

struct PlotColor: Equatable {
    var red: UInt8
    var green: UInt8
    var blue: UInt8
    var opacity: Double = 1

    init(_ hex: UInt32, opacity: Double = 1) {
        red = UInt8(hex >> 16 & 0xFF)
        green = UInt8(hex >> 8 & 0xFF)
        blue = UInt8(hex & 0xFF)
        self.opacity = opacity
    }

    func withOpacity(_ opacity: Double) -> PlotColor { var color = self; color.opacity = opacity; return color }

    static let white = PlotColor(0xFFFFFF)
    static let black = PlotColor(0x000000)
}

enum TextAnchor { case start, middle, end }

/// Two sizes are all a plot needs; the raster font has one size and draws `title` bold.
enum TextStyle { case normal, title }
