/// A software rasterizer into 8-bit RGB pixels, enough for line plots: anti-aliased lines of any
/// width, filled rectangles and circles, and text in the built-in bitmap font.
struct RasterCanvas: PlotCanvas {
    let width: Int
    let height: Int
    /// Rows top to bottom, three bytes (R, G, B) a pixel.
    private(set) var pixels: [UInt8]

    init(width: Int, height: Int, background: PlotColor = .white) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<width * height {
            pixels[3 * i] = background.red
            pixels[3 * i + 1] = background.green
            pixels[3 * i + 2] = background.blue
        }
    }

    func pixel(x: Int, y: Int) -> (red: UInt8, green: UInt8, blue: UInt8) {
        let i = 3 * (y * width + x)
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// Edges that fall inside a pixel cover it partly, so a rectangle on half-pixel bounds is soft, not shifted.
    mutating func fillRect(_ rect: PlotRect, color: PlotColor) {
        let x0 = max(0, Int(rect.minX.rounded(.down))), x1 = min(width, Int(rect.maxX.rounded(.up)))
        let y0 = max(0, Int(rect.minY.rounded(.down))), y1 = min(height, Int(rect.maxY.rounded(.up)))
        guard x0 < x1, y0 < y1 else { return }
        for y in y0..<y1 {
            let coverY = min(rect.maxY, Double(y + 1)) - max(rect.minY, Double(y))
            for x in x0..<x1 {
                let coverX = min(rect.maxX, Double(x + 1)) - max(rect.minX, Double(x))
                blend(x: x, y: y, color: color, coverage: coverX * coverY)
            }
        }
    }

    /// Coverage of each pixel is its centre's distance to the nearest segment, so joints are
    /// round and no pixel is painted twice (which would darken joints of translucent lines).
    mutating func polyline(_ points: [PlotPoint], color: PlotColor, lineWidth: Double, seriesName: String?) {
        guard let first = points.first else { return }
        let reach = lineWidth / 2 + 0.5
        let xs = points.map(\.x), ys = points.map(\.y)
        let x0 = max(0, Int((xs.min()! - reach).rounded(.down))), x1 = min(width, Int((xs.max()! + reach).rounded(.up)))
        let y0 = max(0, Int((ys.min()! - reach).rounded(.down))), y1 = min(height, Int((ys.max()! + reach).rounded(.up)))
        guard x0 < x1, y0 < y1 else { return }
        let boxWidth = x1 - x0
        var coverage = [Double](repeating: 0, count: boxWidth * (y1 - y0))
        let segments = points.count == 1 ? [(first, first)] : Array(zip(points, points.dropFirst()))
        for (a, b) in segments {
            let sx0 = max(x0, Int((min(a.x, b.x) - reach).rounded(.down))), sx1 = min(x1, Int((max(a.x, b.x) + reach).rounded(.up)))
            let sy0 = max(y0, Int((min(a.y, b.y) - reach).rounded(.down))), sy1 = min(y1, Int((max(a.y, b.y) + reach).rounded(.up)))
            guard sx0 < sx1, sy0 < sy1 else { continue }
            for y in sy0..<sy1 {
                for x in sx0..<sx1 {
                    let distance = distanceToSegment(PlotPoint(x: Double(x) + 0.5, y: Double(y) + 0.5), a, b)
                    let cover = min(1, max(0, reach - distance))
                    let index = (y - y0) * boxWidth + (x - x0)
                    if cover > coverage[index] { coverage[index] = cover }
                }
            }
        }
        for y in y0..<y1 {
            for x in x0..<x1 where coverage[(y - y0) * boxWidth + (x - x0)] > 0 {
                blend(x: x, y: y, color: color, coverage: coverage[(y - y0) * boxWidth + (x - x0)])
            }
        }
    }

    mutating func fillCircle(center: PlotPoint, radius: Double, color: PlotColor) {
        let reach = radius + 0.5
        let x0 = max(0, Int((center.x - reach).rounded(.down))), x1 = min(width, Int((center.x + reach).rounded(.up)))
        let y0 = max(0, Int((center.y - reach).rounded(.down))), y1 = min(height, Int((center.y + reach).rounded(.up)))
        guard x0 < x1, y0 < y1 else { return }
        for y in y0..<y1 {
            for x in x0..<x1 {
                let dx = Double(x) + 0.5 - center.x, dy = Double(y) + 0.5 - center.y
                let cover = min(1, max(0, reach - (dx * dx + dy * dy).squareRoot()))
                if cover > 0 { blend(x: x, y: y, color: color, coverage: cover) }
            }
        }
    }

    /// Bitmap glyphs at whole pixels (sharp, no smoothing); `title` is drawn twice, one pixel
    /// apart, the old way of making a bitmap font bold.
    mutating func text(_ string: String, at origin: PlotPoint, anchor: TextAnchor, style: TextStyle, color: PlotColor) {
        let textWidth = textWidth(string, style: style)
        let left = switch anchor {
        case .start: origin.x
        case .middle: origin.x - textWidth / 2
        case .end: origin.x - textWidth
        }
        let top = Int(origin.y.rounded()) - BitmapFont.ascent
        var glyphLeft = Int(left.rounded())
        for character in string {
            for (row, bits) in BitmapFont.rows(for: character).enumerated() where bits != 0 {
                for column in 0..<BitmapFont.glyphWidth where bits & (0x80 >> column) != 0 {
                    for bold in 0...(style == .title ? 1 : 0) {
                        let x = glyphLeft + column + bold, y = top + row
                        if x >= 0, x < width, y >= 0, y < height { blend(x: x, y: y, color: color, coverage: 1) }
                    }
                }
            }
            glyphLeft += BitmapFont.glyphWidth
        }
    }

    func textWidth(_ string: String, style: TextStyle) -> Double {
        Double(string.count * BitmapFont.glyphWidth + (style == .title ? 1 : 0))
    }

    private mutating func blend(x: Int, y: Int, color: PlotColor, coverage: Double) {
        let alpha = min(1, max(0, coverage * color.opacity))
        guard alpha > 0 else { return }
        let i = 3 * (y * width + x)
        func mix(_ old: UInt8, _ new: UInt8) -> UInt8 {
            UInt8((Double(old) * (1 - alpha) + Double(new) * alpha).rounded())
        }
        pixels[i] = mix(pixels[i], color.red)
        pixels[i + 1] = mix(pixels[i + 1], color.green)
        pixels[i + 2] = mix(pixels[i + 2], color.blue)
    }
}

private func distanceToSegment(_ p: PlotPoint, _ a: PlotPoint, _ b: PlotPoint) -> Double {
    let abx = b.x - a.x, aby = b.y - a.y
    let lengthSquared = abx * abx + aby * aby
    let t = lengthSquared > 0 ? min(1, max(0, ((p.x - a.x) * abx + (p.y - a.y) * aby) / lengthSquared)) : 0
    let dx = p.x - (a.x + t * abx), dy = p.y - (a.y + t * aby)
    return (dx * dx + dy * dy).squareRoot()
}
