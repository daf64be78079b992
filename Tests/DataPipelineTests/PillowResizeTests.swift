import DataPipeline
import Foundation
import XCTest

/// Golden bytes from Pillow (Fixtures/resize/make_fixtures.py): torchvision's Resize on a PIL
/// image is `img.resize((w, h), filter)`, so matching these byte for byte is matching torchvision.
final class PillowResizeTests: XCTestCase {
    func filterName(_ filter: ResampleFilter) -> String {
        switch filter {
        case .nearest: "nearest"
        case .bilinear: "bilinear"
        case .bicubic: "bicubic"
        }
    }

    func checkCases(source: String, width: Int, height: Int,
                    _ cases: [(width: Int, height: Int, filters: [ResampleFilter])]) throws {
        let image = try loadResizeFixture("\(source).rgb", width: width, height: height)
        for c in cases {
            for filter in c.filters {
                let name = "\(source)_\(filterName(filter))_\(c.width)x\(c.height)"
                let expected = try loadResizeFixture("\(name).rgb", width: c.width, height: c.height)
                assertSameBytes(resize(image, width: c.width, height: c.height, filter: filter), expected, name)
            }
        }
    }

    /// 37×23 uniform noise: the worst case for rounding, since every weight matters.
    func testNoiseImageMatchesPillowExactly() throws {
        let all: [ResampleFilter] = [.nearest, .bilinear, .bicubic]
        let smooth: [ResampleFilter] = [.bilinear, .bicubic]
        try checkCases(source: "noise37x23", width: 37, height: 23, [
            (16, 10, all),      // down by 2.31 × 2.3
            (9, 13, all),       // down by 4.1 × 1.77
            (50, 31, all),      // up
            (37, 11, smooth),   // width unchanged: Pillow skips the horizontal pass
            (20, 23, smooth),   // height unchanged: Pillow skips the vertical pass
            (61, 7, smooth),    // up in x, down in y: Pillow 13 runs the vertical pass first
            (30, 5, smooth),    // H − h > 2 (W − w): vertical first
            (33, 15, smooth),   // H − h = 2 (W − w): horizontal first (the boundary)
            (33, 14, smooth),   // one more row dropped: vertical first
            (1, 1, smooth),
        ])
    }

    /// 300×200 photo-like image: Resize(256) (an upscale to 384×256) and a strong downscale.
    func testPhotoLikeImageMatchesPillowExactly() throws {
        try checkCases(source: "photo300x200", width: 300, height: 200, [
            (384, 256, [.bilinear, .bicubic]),
            (113, 75, [.bilinear, .bicubic]),
            (290, 61, [.bilinear, .bicubic]),  // vertical pass first
        ])
    }

    /// Resizing a region equals cropping first and resizing the crop (torchvision's resized_crop).
    func testRegionResizeEqualsCropThenResize() throws {
        let image = try loadResizeFixture("photo300x200.rgb", width: 300, height: 200)
        for region in [CropRegion(top: 17, left: 31, height: 151, width: 203), CropRegion(top: 0, left: 299, height: 200, width: 1),
                       CropRegion(top: 50, left: 0, height: 9, width: 300)] {
            for filter: ResampleFilter in [.nearest, .bilinear, .bicubic] {
                for (w, h) in [(64, 64), (224, 224), (region.width, 5), (7, region.height), (region.width, region.height)] {
                    let direct = resize(image, region: region, width: w, height: h, filter: filter)
                    let viaCrop = resize(crop(image, region), width: w, height: h, filter: filter)
                    assertSameBytes(direct, viaCrop, "\(region) → \(w)×\(h) \(filter)")
                }
            }
        }
    }

    func testUnchangedSizeReturnsTheSameImage() throws {
        let image = try loadResizeFixture("noise37x23.rgb", width: 37, height: 23)
        for filter: ResampleFilter in [.nearest, .bilinear, .bicubic] {
            assertSameBytes(resize(image, width: 37, height: 23, filter: filter), image, "identity \(filter)")
        }
    }
}
